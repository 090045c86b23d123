package cloudsvc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"git.timemachine.center/timemachine/instance-sync/restic"
)

// errNoRestic is returned by operations that need restic when none was found
// at start-up; the data plane keeps working without it.
var errNoRestic = errors.New("restic is not available; start cloud-svc with --restic-binary=PATH")

// resticRunner runs restic against a repository on local disk. Secrets go
// through the environment (password) or stdin (a new key's password), never
// argv.
type resticRunner struct {
	bin      string
	cacheDir string
	// command is exec.CommandContext; tests may wrap it.
	command func(ctx context.Context, name string, arg ...string) *exec.Cmd
}

// cleanEnv is the inherited environment without any RESTIC_* variable, so an
// operator's shell settings (another repository, password file, ...) can
// never leak into the server's restic runs.
func cleanEnv() []string { return restic.CleanEnv(os.Environ()) }

// run executes restic with --repo repoPath. stdin, when not empty, is piped
// to restic (how "key add" receives the new password).
func (r *resticRunner) run(ctx context.Context, repoPath, password, stdin string, args ...string) ([]byte, error) {
	if r == nil || r.bin == "" {
		return nil, errNoRestic
	}
	argv := append([]string{"--repo", repoPath}, args...)
	cmdf := r.command
	if cmdf == nil {
		cmdf = exec.CommandContext
	}
	cmd := cmdf(ctx, r.bin, argv...)
	cmd.Env = append(cleanEnv(),
		"RESTIC_PASSWORD="+password,
		"RESTIC_CACHE_DIR="+r.cacheDir,
		"RESTIC_PROGRESS_FPS=0.1",
	)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	if err != nil {
		what := args[0]
		if len(args) > 1 && (args[0] == "key") {
			what += " " + args[1]
		}
		return stdout.Bytes(), fmt.Errorf("restic %s on %s: %w: %s", what, repoPath, err, lastLines(stderr.String(), 3))
	}
	return stdout.Bytes(), nil
}

// lastLines keeps restic's final words (its error) on one line for our log.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// jsonPayload returns the first line of restic output that parses as JSON,
// tolerating warnings restic prints around it.
func jsonPayload(out []byte, v any) error {
	for _, line := range bytes.Split(out, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || (line[0] != '[' && line[0] != '{') {
			continue
		}
		if err := json.Unmarshal(line, v); err == nil {
			return nil
		}
	}
	return errors.New("restic printed no JSON")
}

// snapshot is the part of restic's snapshot JSON the server needs.
type snapshot struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Hostname string    `json:"hostname"`
	Tags     []string  `json:"tags"`
	// Original is the id the snapshot was first written under, when
	// "restic tag" (retention's re-tagging) wrote it again since.
	Original string `json:"original,omitempty"`
}

func (s snapshot) tag(prefix string) (string, bool) {
	for _, t := range s.Tags {
		if v, ok := strings.CutPrefix(t, prefix); ok {
			return v, true
		}
	}
	return "", false
}

func (s snapshot) kind() string {
	k, _ := s.tag("kind:")
	return k
}

func (r *resticRunner) snapshots(ctx context.Context, repoPath, password string) ([]snapshot, error) {
	out, err := r.run(ctx, repoPath, password, "", "snapshots", "--json", "--no-lock")
	if err != nil {
		return nil, err
	}
	var snaps []snapshot
	if err := jsonPayload(out, &snaps); err != nil {
		return nil, fmt.Errorf("restic snapshots on %s: %w", repoPath, err)
	}
	return snaps, nil
}

type resticKey struct {
	Current bool   `json:"current"`
	ID      string `json:"id"`
}

// currentKeyID is the id of the key that password opens.
func (r *resticRunner) currentKeyID(ctx context.Context, repoPath, password string) (string, error) {
	out, err := r.run(ctx, repoPath, password, "", "key", "list", "--json", "--no-lock")
	if err != nil {
		return "", err
	}
	var keys []resticKey
	if err := jsonPayload(out, &keys); err != nil {
		return "", fmt.Errorf("restic key list on %s: %w", repoPath, err)
	}
	for _, k := range keys {
		if k.Current {
			return k.ID, nil
		}
	}
	return "", fmt.Errorf("restic key list on %s: no current key", repoPath)
}

func (r *resticRunner) addKey(ctx context.Context, repoPath, password, newPassword string) error {
	_, err := r.run(ctx, repoPath, password, newPassword+"\n", "key", "add", "--host", "cloud-svc", "--user", "cloud-svc")
	return err
}

func (r *resticRunner) removeKey(ctx context.Context, repoPath, password, keyID string) error {
	_, err := r.run(ctx, repoPath, password, "", "key", "remove", "--retry-lock", "30s", keyID)
	return err
}
