package restic

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseLine(t *testing.T) {
	for _, tt := range []struct {
		line, typ string
		ok        bool
	}{
		{`{"message_type":"status","percent_done":0.5}`, "status", true},
		{`  {"message_type":"summary"}  `, "summary", true},
		{`unable to open cache: mkdir /nonexistent: permission denied`, "", false},
		{`[{"id":"x"}]`, "", false},
		{`{"message_type":`, "", false},
		{``, "", false},
	} {
		typ, _, ok := ParseLine([]byte(tt.line))
		if typ != tt.typ || ok != tt.ok {
			t.Errorf("ParseLine(%q) = %q %v, want %q %v", tt.line, typ, ok, tt.typ, tt.ok)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"message_type":"status","percent_done":0.5,"current_files":["a"]}`))
	f.Add([]byte(`{"message_type":"exit_error","code":12,"message":"wrong password"}`))
	f.Add([]byte("Fatal: oops"))
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, raw, ok := ParseLine(b)
		if !ok && (typ != "" || raw != nil) {
			t.Fatalf("not ok but typ=%q", typ)
		}
	})
}

func TestEnvIsClean(t *testing.T) {
	c := &Client{Password: "pw", RESTUser: "u", RESTPassword: "pw", Environ: []string{
		"PATH=/bin", "RESTIC_PASSWORD_COMMAND=echo x", "RESTIC_HOST=h", "RESTIC_REPOSITORY=/r", "RESTIC_PASSWORD=old", "HOME=/h",
	}}
	env := c.env()
	var restic []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "RESTIC_") {
			restic = append(restic, kv)
		}
	}
	slices.Sort(restic)
	want := []string{"RESTIC_PASSWORD=pw", "RESTIC_PROGRESS_FPS=2", "RESTIC_REST_PASSWORD=pw", "RESTIC_REST_USERNAME=u"}
	if !slices.Equal(restic, want) {
		t.Fatalf("restic env = %v, want %v", restic, want)
	}
	if !slices.Contains(env, "PATH=/bin") || !slices.Contains(env, "HOME=/h") {
		t.Fatal("ordinary variables dropped")
	}
}

// fakeRestic writes a shell script standing in for restic's exit codes; the
// real restic is driven by the end-to-end scripts.
func fakeRestic(t *testing.T, body string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("shell script")
	}
	p := filepath.Join(t.TempDir(), "restic")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExitCodes(t *testing.T) {
	for code, want := range map[int]error{3: ErrPartial, 10: ErrNoRepository, 11: ErrLocked, 12: ErrWrongPassword} {
		bin := fakeRestic(t, `echo 'warning line'; echo '{"message_type":"exit_error","code":`+itoa(code)+`,"message":"from restic"}'; exit `+itoa(code))
		c := &Client{Binary: bin, Repo: "rest:http://x/", Timeout: 10 * time.Second}
		err := c.Init(context.Background())
		if !errors.Is(err, want) || !strings.Contains(err.Error(), "from restic") {
			t.Errorf("exit %d: %v, want %v", code, err, want)
		}
	}
	bin := fakeRestic(t, `echo 'Fatal: something else' >&2; exit 1`)
	err := (&Client{Binary: bin, Repo: "r", Timeout: 10 * time.Second}).Init(context.Background())
	var re *Error
	if !errors.As(err, &re) || re.ExitCode != 1 || re.Kind != nil || !strings.Contains(err.Error(), "something else") {
		t.Fatalf("unknown exit code: %v", err)
	}
}

func TestStallEndsRun(t *testing.T) {
	// A restic that prints status lines that never move, like one retrying
	// an unreachable server.
	bin := fakeRestic(t, `while true; do echo '{"message_type":"status","percent_done":0.1}'; sleep 0.05; done`)
	c := &Client{Binary: bin, Repo: "r", Stall: 300 * time.Millisecond, Grace: 500 * time.Millisecond}
	c.Command = func(ctx context.Context, name string, args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, name, args...)
	}
	// The outer deadline only ends a run the stall bound missed, which
	// then fails as a cancelled run rather than hanging the test.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := c.Backup(ctx, BackupOptions{FilesFrom: "f", Host: "h"}, nil)
	if !errors.Is(err, ErrStalled) || ctx.Err() != nil {
		t.Fatalf("stalled backup: %v (outer deadline: %v)", err, ctx.Err())
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// restic's JSON messages on stderr reach logs and errors as text, and
// item errors are kept for telling a full disk from other failures.
func TestStderrJSONBecomesText(t *testing.T) {
	var out strings.Builder
	tb := tailBuffer{prefix: "restic: ", out: &out}
	tb.Write([]byte(`{"message_type":"error","error":{"message":"write /p/saves/W/r.0.0.mca: no space left on device"},"during":"restore","item":"/saves/W/r.0.0.mca"}` + "\n"))
	tb.Write([]byte(`{"message_type":"exit_error","code":1,"message":"Fatal: There were 1 errors\n"}` + "\n"))
	if strings.Contains(out.String(), "message_type") {
		t.Fatalf("JSON reached the log:\n%s", out.String())
	}
	if got := tb.lastLine(); got != "There were 1 errors" {
		t.Fatalf("last line %q", got)
	}
	if len(tb.errs) != 1 || !strings.Contains(tb.errs[0], "no space left on device") {
		t.Fatalf("item errors %q", tb.errs)
	}
}

// TestCleanEnv: no RESTIC_* variable in any letter case survives (Windows
// reads restic_password as RESTIC_PASSWORD); the rest stays in order.
func TestCleanEnv(t *testing.T) {
	got := CleanEnv([]string{"PATH=/bin", "restic_password_command=echo x", "RESTIC_HOST=h", "Restic_Repository=/r", "HOME=/h", "RESTICX=1"})
	if want := []string{"PATH=/bin", "HOME=/h", "RESTICX=1"}; !slices.Equal(got, want) {
		t.Fatalf("CleanEnv = %v, want %v", got, want)
	}
}
