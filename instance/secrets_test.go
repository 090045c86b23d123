package instance

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestPathPart(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                  "alice",
		"01HZX-a_b.c~d":          "01HZX-a_b.c~d",
		"..":                     "%2E.",
		".hidden":                "%2Ehidden",
		"a/b\\c:d":               "a%2Fb%5Cc%3Ad",
		"":                       "%00",
		"é":                      "%C3%A9",
		"with space%":            "with%20space%25",
		"127.0.0.1:8000/prefix/": "127.0.0.1%3A8000%2Fprefix%2F",
	} {
		if got := PathPart(in); got != want {
			t.Errorf("PathPart(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"https://cloud.tm.center":   "cloud.tm.center",
		"HTTP://127.0.0.1:8000/":    "127.0.0.1%3A8000",
		"https://host/sub/path":     "host%2Fsub%2Fpath",
		"http://[::1]:8000":         "%5B%3A%3A1%5D%3A8000",
		"https://Cloud.Example.org": "Cloud.Example.org",
	} {
		if got := ServerPart(in); got != want {
			t.Errorf("ServerPart(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUserDirs(t *testing.T) {
	home := t.TempDir()
	d := UserDirs{Config: filepath.Join(home, "config", "instance-sync"), Cache: filepath.Join(home, "cache", "instance-sync")}
	c := Config{URL: "http://127.0.0.1:8000", User: "alice", InstanceID: "01HZXAAAAAAAAAAAAAAAAAAAAA"}
	if got, want := d.TokenFile(c), filepath.Join(d.Config, "tokens", "127.0.0.1%3A8000", "alice", c.InstanceID); got != want {
		t.Fatalf("token file %s, want %s", got, want)
	}
	if got, want := d.MasterKeyFile(c), filepath.Join(d.Cache, "keys", "127.0.0.1%3A8000", "alice", c.InstanceID); got != want {
		t.Fatalf("key file %s, want %s", got, want)
	}
	tok := Token{User: "alice", Password: "pw"}
	if err := WriteToken(d.TokenFile(c), tok); err != nil {
		t.Fatal(err)
	}
	got, err := ReadToken(d.TokenFile(c))
	if err != nil || got != tok {
		t.Fatalf("token read back %v, %v", got, err)
	}
	if runtime.GOOS != "windows" {
		for _, dir := range []string{d.Config, filepath.Dir(d.TokenFile(c))} {
			fi, err := os.Stat(dir)
			if err != nil || fi.Mode().Perm() != 0o700 {
				t.Fatalf("%s: mode %v, %v; want 0700", dir, fi.Mode().Perm(), err)
			}
		}
	}

	id, err := d.ComputerID()
	if err != nil || len(id) != 32 {
		t.Fatalf("computer id %q, %v", id, err)
	}
	again, err := d.ComputerID()
	if err != nil || again != id {
		t.Fatalf("computer id changed: %q then %q (%v)", id, again, err)
	}
	other := UserDirs{Config: filepath.Join(home, "other"), Cache: filepath.Join(home, "other-cache")}
	if o, _ := other.ComputerID(); o == id {
		t.Fatal("another user folder has the same computer id")
	}
}
