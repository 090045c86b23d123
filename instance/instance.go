// Package instance is an instance's sync state on disk: the opt-in marker
// and config (sync.json), the credentials (token), what was last synced
// (state.json, manifest.json), the scope overrides (scope.json) and the
// local lock in <pack>/.cloud-sync/, and the secrets (token, cached master
// key) in the user's own folders (UserDirs), never inside the instance.
package instance

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"git.timemachine.center/timemachine/instance-sync/history"
	"git.timemachine.center/timemachine/instance-sync/internal/atomicfile"
	"git.timemachine.center/timemachine/instance-sync/scope"
)

// DirName is the state folder inside the pack folder. The name is the
// predecessor's, kept so existing installs keep working.
const DirName = ".cloud-sync"

// ConfigVersion is the sync.json version this build reads and writes.
const ConfigVersion = 1

// Paths locates the files of one instance.
type Paths struct {
	Pack string // the pack folder ($INST_MC_DIR)
	// KeyFile is where the repository's master key is cached
	// (UserDirs.MasterKeyFile); empty caches nothing.
	KeyFile string
}

func (p Paths) Dir() string             { return filepath.Join(p.Pack, DirName) }
func (p Paths) Config() string          { return filepath.Join(p.Dir(), "sync.json") }
func (p Paths) Disabled() string        { return filepath.Join(p.Dir(), "sync.json.disabled") }
func (p Paths) LegacyToken() string     { return filepath.Join(p.Dir(), "token") }
func (p Paths) State() string           { return filepath.Join(p.Dir(), "state.json") }
func (p Paths) Manifest() string        { return filepath.Join(p.Dir(), "manifest.json") }
func (p Paths) MasterKey() string       { return p.KeyFile }
func (p Paths) LegacyMasterKey() string { return filepath.Join(p.Dir(), "masterkey") }
func (p Paths) Scope() string           { return filepath.Join(p.Dir(), "scope.json") }
func (p Paths) FilesFrom() string       { return filepath.Join(p.Dir(), "files-from.txt") }
func (p Paths) ExcludeFrom() string     { return filepath.Join(p.Dir(), "exclude-from.txt") }
func (p Paths) Lock() string            { return filepath.Join(p.Dir(), "lock") }
func (p Paths) Staging() string         { return filepath.Join(p.Dir(), "staging") }
func (p Paths) Displaced() string       { return filepath.Join(p.Dir(), "displaced") }

// FileError is a state file that cannot be used. Its message names the file
// and what to do.
type FileError struct {
	Path    string
	Problem string
	Fix     string
}

func (e *FileError) Error() string {
	if e.Fix == "" {
		return fmt.Sprintf("%s: %s", e.Path, e.Problem)
	}
	return fmt.Sprintf("%s: %s; %s", e.Path, e.Problem, e.Fix)
}

// Config is sync.json.
type Config struct {
	Version    int    `json:"version"`
	URL        string `json:"url"`
	InstanceID string `json:"instance_id"`
	User       string `json:"user"`
	// Label is the name given at init (--instance-label); optional.
	Label string `json:"label,omitempty"`
}

// ErrNotOptedIn means the pack folder has no sync.json: pull and push do
// nothing, silently.
var ErrNotOptedIn = errors.New("not opted in")

// ParseConfig parses and validates sync.json content.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	if err := decodeVersioned(data, &c, &c.Version, ConfigVersion); err != nil {
		return Config{}, err
	}
	switch {
	case c.URL == "":
		return Config{}, errors.New(`"url" is missing`)
	case !validID(c.InstanceID):
		return Config{}, fmt.Errorf(`"instance_id" %q is not a valid instance id`, c.InstanceID)
	case c.User == "" || strings.ContainsAny(c.User, "/:"):
		return Config{}, fmt.Errorf(`"user" %q is not a valid user name`, c.User)
	}
	return c, nil
}

func validID(id string) bool {
	if len(id) < 8 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// ValidInstanceID reports whether id can name a repository.
func ValidInstanceID(id string) bool { return validID(id) }

// decodeVersioned decodes one of our JSON files into v, whose "version"
// decodes into *version, and refuses any version but want: a file another
// build wrote is never read as this build's. Unknown fields are allowed (a
// newer build may add some); trailing garbage is not (json.Unmarshal
// refuses it, in one pass over the data).
func decodeVersioned(data []byte, v any, version *int, want int) error {
	if err := json.Unmarshal(data, v); err != nil {
		return err
	}
	if *version != want {
		return fmt.Errorf("unknown version %d (this build reads version %d)", *version, want)
	}
	return nil
}

// LoadConfig reads sync.json. It returns ErrNotOptedIn when there is none.
func (p Paths) LoadConfig() (Config, error) {
	data, err := os.ReadFile(p.Config())
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, ErrNotOptedIn
	}
	if err != nil {
		return Config{}, err
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, &FileError{Path: p.Config(), Problem: err.Error(),
			Fix: `run "instance-sync init --force" with the same --url and --join=<instance id> to rewrite it`}
	}
	return c, nil
}

// SaveConfig writes sync.json atomically.
func (p Paths) SaveConfig(c Config) error {
	c.Version = ConfigVersion
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.Dir(), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(p.Config(), append(data, '\n'), 0o644)
}

// MergeRules is scope.json's "merge" object as the merge reads it.
func MergeRules(m map[string]string) history.Rules {
	if len(m) == 0 {
		return nil
	}
	r := history.Rules{}
	for e, rule := range m {
		r[e] = history.Rule(rule)
	}
	return r
}

// LoadScope reads scope.json (if any) and packwiz.json and returns the
// effective scope.
func (p Paths) LoadScope() (scope.Scope, error) {
	var o scope.Overrides
	data, err := os.ReadFile(p.Scope())
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return scope.Scope{}, err
	default:
		o, err = scope.ParseOverrides(data)
		if err != nil {
			return scope.Scope{}, &FileError{Path: p.Scope(), Problem: err.Error(),
				Fix: `fix it (format: {"include":["config/"],"exclude":["saves/Test/"]}) or delete it to use the defaults`}
		}
		if err := MergeRules(o.Merge).Check(); err != nil {
			return scope.Scope{}, &FileError{Path: p.Scope(), Problem: err.Error(),
				Fix: `fix it (format: "merge": {"config/": "folder"}) or take the entry out to use the default rule`}
		}
	}
	s := scope.New(o)
	pw, err := scope.PackwizFiles(p.Pack)
	if err != nil {
		return scope.Scope{}, err
	}
	s.Packwiz = pw
	return s, nil
}
