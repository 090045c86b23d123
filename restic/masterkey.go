package restic

import "context"

// MasterKey returns the repository's master key as "restic cat masterkey"
// prints it (JSON; repofile.ParseMasterKey reads it). With it, snapshot
// files can be read without running restic again.
//
// The bytes unlock the whole repository: none of restic's stdout reaches
// Stderr or an error message, and the caller must keep them as carefully
// as the password.
func (c *Client) MasterKey(ctx context.Context) ([]byte, error) {
	var out []byte
	keep := func(line []byte) {
		out = append(out, line...)
		out = append(out, '\n')
	}
	// restic prints the key indented over several lines, which reach
	// onOther; a restic that printed it on one line would reach onLine as
	// a JSON object without a message type.
	err := c.runLines(ctx, "cat masterkey", false, []string{"cat", "--no-lock", "masterkey"},
		func(msgType string, raw []byte) bool {
			if msgType == "" {
				keep(raw)
			}
			return false
		},
		func(line []byte) bool {
			keep(line)
			return true
		})
	if err != nil {
		clear(out)
		return nil, err
	}
	return out, nil
}
