// Package restic is the boundary to the restic executable: it builds the
// command line and a clean environment, parses restic's --json output line
// by line and turns restic's exit codes into typed errors.
package restic

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Typed errors for restic's documented exit codes.
var (
	ErrPartial       = errors.New("backup incomplete: some files could not be read") // exit 3
	ErrNoRepository  = errors.New("repository does not exist")                       // exit 10
	ErrLocked        = errors.New("repository is locked")                            // exit 11
	ErrWrongPassword = errors.New("wrong repository password")                       // exit 12
	ErrStalled       = errors.New("no progress")
	// ErrStorageFull is the server refusing an upload with HTTP 507 (a
	// quota, or its disk): restic prints "unexpected HTTP response (507)".
	ErrStorageFull = errors.New("the server's storage is full")
)

// Error is a failed restic run.
type Error struct {
	Op       string // backup, restore, snapshots, ...
	ExitCode int
	Message  string // restic's own last words (exit_error or stderr), secrets never included
	Kind     error  // one of the typed errors above, or nil
	// Items are restic's messages about single files or folders that
	// failed (at most 20), e.g. "…/r.0.0.mca: write: no space left on device".
	Items []string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" && e.Kind != nil {
		msg = e.Kind.Error()
	}
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", e.ExitCode)
	}
	return fmt.Sprintf("restic %s: %s", e.Op, msg)
}

func (e *Error) Unwrap() error { return e.Kind }

// Client runs restic against one repository.
type Client struct {
	Binary string
	Repo   string // e.g. rest:https://host/user/instance/
	// KeyHint is the id of the repository key to try first (--key-hint).
	KeyHint string
	// Secrets are passed only through the environment.
	Password     string // repository password
	RESTUser     string // rest-server basic auth
	RESTPassword string
	Dir          string    // working directory (the pack folder for backups)
	Stderr       io.Writer // restic's stderr lines, prefixed; nil = discarded
	// Timeout bounds runs that show no progress (snapshots, init, unlock).
	Timeout time.Duration
	// Stall ends a backup or restore whose progress has not moved for this
	// long: restic itself retries an unreachable server for 15 minutes.
	Stall time.Duration
	// Grace is how long restic gets to stop after an interrupt before it is
	// killed (default 10s: it removes its repository lock on the way out).
	Grace time.Duration
	// LeftLock is set when a run that locks the repository (backup,
	// restore) failed: restic may not have removed its lock (stopped while
	// the server did not answer), and an exclusive operation (the server's
	// prune) would wait for it to go stale. Unlock removes it.
	LeftLock bool
	// Environ is the environment to start from; default os.Environ().
	Environ []string
	// Command builds the process; tests may wrap it. Default exec.CommandContext.
	Command func(ctx context.Context, name string, args ...string) *exec.Cmd
}

// Status is one of restic's JSON status lines during backup or restore.
type Status struct {
	PercentDone float64  `json:"percent_done"`
	TotalFiles  int64    `json:"total_files"`
	FilesDone   int64    `json:"files_done"`
	FilesRest   int64    `json:"files_restored"`
	TotalBytes  int64    `json:"total_bytes"`
	BytesDone   int64    `json:"bytes_done"`
	BytesRest   int64    `json:"bytes_restored"`
	SecondsLeft int64    `json:"seconds_remaining"`
	Current     []string `json:"current_files"`
}

// ParseLine decodes one line of restic --json output. Lines that are not a
// JSON object (warnings restic prints regardless) return ok=false.
func ParseLine(b []byte) (msgType string, raw []byte, ok bool) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return "", nil, false
	}
	var l struct {
		MessageType string `json:"message_type"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return "", nil, false
	}
	return l.MessageType, b, true
}

// CleanEnv is base without any RESTIC_* variable (in any letter case, as
// Windows reads them): an inherited RESTIC_PASSWORD_COMMAND outranks
// RESTIC_PASSWORD, RESTIC_HOST silently filters snapshots, and an
// operator's RESTIC_REPOSITORY or password file must never reach the runs
// of instance-sync or cloud-svc. The caller appends its own.
func CleanEnv(base []string) []string {
	out := make([]string, 0, len(base)+6)
	for _, kv := range base {
		if !strings.HasPrefix(strings.ToUpper(kv), "RESTIC_") {
			out = append(out, kv)
		}
	}
	return out
}

func (c *Client) env() []string {
	base := c.Environ
	if base == nil {
		base = os.Environ()
	}
	out := append(CleanEnv(base),
		"RESTIC_PROGRESS_FPS=2",
		"RESTIC_PASSWORD="+c.Password,
	)
	if c.RESTUser != "" {
		out = append(out, "RESTIC_REST_USERNAME="+c.RESTUser, "RESTIC_REST_PASSWORD="+c.RESTPassword)
	}
	return out
}

// run executes restic with args (after the global flags) and calls onLine
// for every JSON line of stdout. A watched run (backup, restore) ends when
// it stalls; any other run when it exceeds the timeout. progress reports whether a line shows the
// operation moving, which resets the stall timer.
func (c *Client) run(ctx context.Context, op string, watched bool, args []string, onLine func(msgType string, raw []byte) (progress bool)) error {
	return c.runLines(ctx, op, watched, args, onLine, nil)
}

// runLines is run with a handler for lines that are not JSON objects
// (restic prints some lists as one JSON array). Lines it does not take are
// treated as stderr.
func (c *Client) runLines(ctx context.Context, op string, watched bool, args []string, onLine func(msgType string, raw []byte) (progress bool), onOther func([]byte) bool) error {
	full := []string{"--repo", c.Repo, "--json"}
	if c.KeyHint != "" {
		full = append(full, "--key-hint", c.KeyHint)
	}
	full = append(full, args...)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := c.Stall
	if !watched {
		stall = 0
	}
	if stall <= 0 && c.Timeout > 0 {
		var tcancel context.CancelFunc
		ctx, tcancel = context.WithTimeoutCause(ctx, c.Timeout, fmt.Errorf("%w for %s", ErrStalled, c.Timeout))
		defer tcancel()
	}
	newCmd := c.Command
	if newCmd == nil {
		newCmd = exec.CommandContext
	}
	cmd := newCmd(ctx, c.Binary, full...)
	cmd.Dir = c.Dir
	cmd.Env = c.env()
	cmd.Stdin = nil
	dieWithParent(cmd)
	cmd.Cancel = func() error { return interrupt(cmd.Process) }
	cmd.WaitDelay = c.Grace
	if cmd.WaitDelay <= 0 {
		cmd.WaitDelay = 10 * time.Second
	}
	// restic's stdout goes through a pipe we close after Wait, so a child
	// that ignores the interrupt and is killed after the grace period can
	// never leave the reader hanging.
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	var errBuf tailBuffer
	errBuf.prefix = "restic: "
	errBuf.out = c.Stderr
	cmd.Stderr = &errBuf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start restic %s: %w", op, err)
	}

	var exitMsg string
	var mu sync.Mutex
	last := time.Now()
	done := make(chan struct{})
	if stall > 0 {
		go func() {
			t := time.NewTicker(stall / 10)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					mu.Lock()
					idle := time.Since(last)
					mu.Unlock()
					if idle > stall {
						cancel(fmt.Errorf("%w for %s (network down?)", ErrStalled, stall.Round(time.Millisecond)))
						return
					}
				}
			}
		}()
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
		for sc.Scan() {
			mt, raw, ok := ParseLine(sc.Bytes())
			if !ok && onOther != nil && onOther(sc.Bytes()) {
				continue
			}
			if !ok {
				errBuf.Write(append(append([]byte(nil), sc.Bytes()...), '\n'))
				continue
			}
			if mt == "exit_error" {
				var e struct {
					Message string `json:"message"`
				}
				_ = json.Unmarshal(raw, &e)
				mu.Lock()
				exitMsg = strings.TrimSpace(e.Message)
				mu.Unlock()
				continue
			}
			if onLine != nil && onLine(mt, raw) {
				mu.Lock()
				last = time.Now()
				mu.Unlock()
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err := cmd.Wait()
	pw.Close()
	<-scanned
	close(done)
	mu.Lock()
	defer mu.Unlock()
	if err != nil && (op == "backup" || op == "restore") {
		var ee *exec.ExitError
		// Exit 3 (partial) ends normally; 10, 11 and 12 end before restic
		// takes its lock.
		if !errors.As(err, &ee) || ee.ExitCode() < 3 || ee.ExitCode() > 12 {
			c.LeftLock = true
		}
	}
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
		return &Error{Op: op, ExitCode: -1, Message: cause.Error(), Kind: cause}
	}
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("restic %s: %w", op, err)
	}
	code := ee.ExitCode()
	re := &Error{Op: op, ExitCode: code, Message: exitMsg}
	switch code {
	case 3:
		re.Kind = ErrPartial
	case 10:
		re.Kind = ErrNoRepository
	case 11:
		re.Kind = ErrLocked
	case 12:
		re.Kind = ErrWrongPassword
	}
	if re.Message == "" {
		re.Message = errBuf.lastLine()
	}
	if re.Kind == nil && (errBuf.sawStorageFull() || strings.Contains(exitMsg, storageFullText)) {
		re.Kind = ErrStorageFull
	}
	errBuf.mu.Lock()
	re.Items = errBuf.errs
	errBuf.mu.Unlock()
	return re
}

// tailBuffer forwards restic's stderr, prefixed, and keeps its last line
// for the error message.
type tailBuffer struct {
	mu     sync.Mutex
	prefix string
	out    io.Writer
	part   []byte
	last   string
	errs   []string // restic's errors about single items
	full   bool     // a line said the server answered 507
}

// storageFullText is how restic's REST backend reports HTTP 507.
const storageFullText = "unexpected HTTP response (507)"

func (t *tailBuffer) sawStorageFull() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.full
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(t.part[:i]), "\r")
		t.part = t.part[i+1:]
		if strings.TrimSpace(line) == "" {
			continue
		}
		line = t.plain(line)
		if strings.Contains(line, storageFullText) {
			t.full = true
		}
		t.last = line
		if t.out != nil {
			fmt.Fprintf(t.out, "%s%s\n", t.prefix, line)
		}
	}
	return len(p), nil
}

// plain turns restic's JSON messages on stderr (an item's error, the
// exit error) into text: they reach launcher logs and error messages,
// where JSON means nothing to a player. Item errors are kept for Error.
func (t *tailBuffer) plain(line string) string {
	mt, raw, ok := ParseLine([]byte(line))
	if !ok {
		return line
	}
	var m struct {
		Message string `json:"message"`
		Error   struct {
			Message string `json:"message"`
		} `json:"error"`
		During string `json:"during"`
		Item   string `json:"item"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return line
	}
	switch {
	case mt == "error" && m.Error.Message != "":
		text := m.Error.Message
		if m.Item != "" && !strings.Contains(text, m.Item) {
			text = m.Item + ": " + text
		}
		if len(t.errs) < 20 {
			t.errs = append(t.errs, text)
		}
		return text
	case m.Message != "":
		return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(m.Message), "Fatal: "))
	}
	return line
}

func (t *tailBuffer) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.part) > 0 {
		return strings.TrimSpace(string(t.part))
	}
	return strings.TrimPrefix(t.last, "Fatal: ")
}
