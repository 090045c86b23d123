package instance

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"git.timemachine.center/timemachine/instance-sync/internal/atomicfile"
)

// UserDirs are this user's folders outside every instance: the secrets
// that must never travel with an instance folder (a launcher's export zips
// the whole folder) and this computer's id. Nothing here is shared
// between users of one computer.
type UserDirs struct {
	// Config holds the tokens and this computer's id:
	// <os.UserConfigDir>/instance-sync.
	Config string
	// Cache holds the cached master keys (deleting them is safe):
	// <os.UserCacheDir>/instance-sync.
	Cache string
}

// DefaultUserDirs are the OS's per-user config and cache folders, as
// os.UserConfigDir and os.UserCacheDir find them, read through getenv (so
// a caller can point them elsewhere) for goos: $XDG_CONFIG_HOME and
// $XDG_CACHE_HOME, else ~/.config and ~/.cache (Linux and other Unix);
// ~/Library/Application Support and ~/Library/Caches (macOS); %AppData%
// and %LocalAppData% (Windows). Each with "instance-sync" appended.
func DefaultUserDirs(getenv func(string) string, goos string) (UserDirs, error) {
	var cfg, cache string
	home := getenv("HOME")
	switch goos {
	case "windows":
		cfg, cache = getenv("AppData"), getenv("LocalAppData")
		if cfg == "" || cache == "" {
			return UserDirs{}, errors.New(`cannot find this user's folders: %AppData% or %LocalAppData% is not set`)
		}
	case "darwin", "ios":
		if home == "" {
			return UserDirs{}, errors.New("cannot find this user's folders: $HOME is not set")
		}
		cfg, cache = filepath.Join(home, "Library", "Application Support"), filepath.Join(home, "Library", "Caches")
	default:
		cfg, cache = getenv("XDG_CONFIG_HOME"), getenv("XDG_CACHE_HOME")
		// Relative XDG paths are invalid and ignored, as the spec says.
		if !filepath.IsAbs(cfg) || !filepath.IsAbs(cache) {
			if home == "" {
				return UserDirs{}, errors.New("cannot find this user's folders: $HOME is not set")
			}
			if !filepath.IsAbs(cfg) {
				cfg = filepath.Join(home, ".config")
			}
			if !filepath.IsAbs(cache) {
				cache = filepath.Join(home, ".cache")
			}
		}
	}
	return UserDirs{Config: filepath.Join(cfg, "instance-sync"), Cache: filepath.Join(cache, "instance-sync")}, nil
}

// TokenFile is where the token of instance c is kept:
// <Config>/tokens/<server>/<user>/<instance id>, each part escaped with
// PathPart. Keyed by instance, not only by account: a folder whose
// instance has no token here came from another computer.
func (d UserDirs) TokenFile(c Config) string {
	return filepath.Join(d.Config, "tokens", ServerPart(c.URL), PathPart(c.User), PathPart(c.InstanceID))
}

// MasterKeyFile is where the master key of instance c's repository is
// cached: <Cache>/keys/<server>/<user>/<instance id>.
func (d UserDirs) MasterKeyFile(c Config) string {
	return filepath.Join(d.Cache, "keys", ServerPart(c.URL), PathPart(c.User), PathPart(c.InstanceID))
}

// ComputerFile holds this computer's id. On Windows it lives in
// %LocalAppData%, which a roaming profile does not carry to other
// computers; elsewhere in the config folder, which is not cleaned the way
// a cache may be.
func (d UserDirs) ComputerFile() string {
	if runtime.GOOS == "windows" {
		return filepath.Join(d.Cache, "computer-id")
	}
	return filepath.Join(d.Config, "computer-id")
}

// ServerPart is a server URL as one folder name: the URL without its
// scheme, escaped with PathPart ("https://cloud.tm.center" →
// "cloud.tm.center", "http://127.0.0.1:8000" → "127.0.0.1%3A8000").
func ServerPart(url string) string {
	url = strings.TrimRight(url, "/")
	lower := strings.ToLower(url)
	for _, scheme := range []string{"https://", "http://"} {
		if strings.HasPrefix(lower, scheme) {
			url = url[len(scheme):]
			break
		}
	}
	return PathPart(url)
}

// PathPart escapes s into one file name that is valid on every OS: ASCII
// letters, digits and "-_.~" stay, every other byte becomes %XX, and so
// does a leading dot (no ".", ".." or hidden names). It is what Python's
// urllib.parse.quote(s, safe="") does, plus the leading dot.
func PathPart(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		keep := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '~' || c == '.' && i > 0
		if keep {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if b.Len() == 0 {
		return "%00"
	}
	return b.String()
}

// WriteSecret writes a secret file with mode 0600, creating its folders
// with mode 0700 (see protectDir for Windows).
func WriteSecret(path string, data []byte) error {
	if err := MkdirPrivate(filepath.Dir(path)); err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o600)
}

// MkdirPrivate creates dir and its missing parents with mode 0700; on
// Windows the new folders get an ACL for this user alone.
func MkdirPrivate(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := protectDir(missing[i]); err != nil {
			return fmt.Errorf("%s: cannot make it private: %w", missing[i], err)
		}
	}
	return nil
}

// ComputerID is this computer's id for this user, made once. The state
// records it with the pack folder's path, so a folder copied from another
// computer is recognised.
func (d UserDirs) ComputerID() (string, error) {
	if !filepath.IsAbs(d.Config) || !filepath.IsAbs(d.Cache) {
		return "", fmt.Errorf("this user's folders are not known (config %q, cache %q)", d.Config, d.Cache)
	}
	f := d.ComputerFile()
	data, err := os.ReadFile(f)
	if err == nil {
		if id := strings.TrimSpace(string(data)); len(id) >= 16 {
			return id, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	if err := MkdirPrivate(filepath.Dir(f)); err != nil {
		return "", err
	}
	// Two first runs at once: the first to write wins, both read it back.
	fh, err := os.OpenFile(f, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, werr := fh.WriteString(id + "\n")
		if cerr := fh.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(f)
			return "", werr
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	data, err = os.ReadFile(f)
	if err != nil {
		return "", err
	}
	if id := strings.TrimSpace(string(data)); len(id) >= 16 {
		return id, nil
	}
	return "", &FileError{Path: f, Problem: "not a computer id", Fix: "delete it (a new one is made)"}
}
