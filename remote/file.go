package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// ErrNotFound is HTTP 404 for a file: the repository or the file is not
// on the server (any more).
var ErrNotFound = errors.New("not found on the server")

// maxSnapshotFile bounds a snapshot file's download. restic's are a few
// hundred bytes; a server that sends more is not serving one.
const maxSnapshotFile = 16 << 20

// SnapshotFile downloads snapshots/<id> of an instance's repository, as
// stored: still encrypted (see package repofile).
func (s Server) SnapshotFile(ctx context.Context, instanceID, id string) ([]byte, error) {
	// The id becomes part of the path: only a snapshot id may.
	if !isHexID(id) {
		return nil, fmt.Errorf("%q is not a snapshot id", id)
	}
	resp, err := s.do(ctx, http.MethodGet, "/"+url.PathEscape(s.User)+"/"+url.PathEscape(instanceID)+"/snapshots/"+id, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: snapshot %s of %s on %s", ErrNotFound, id[:8], instanceID, s.base())
	default:
		return nil, s.statusError(resp, "reading snapshot "+id[:8], "")
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSnapshotFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: reading snapshot %s: %v", ErrUnreachable, s.base(), id[:8], trimURL(err))
	}
	if len(b) > maxSnapshotFile {
		return nil, fmt.Errorf("%s: snapshot %s is larger than %d MiB; not a snapshot file", s.base(), id[:8], maxSnapshotFile>>20)
	}
	return b, nil
}
