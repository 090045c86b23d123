package instance

import (
	"errors"
	"io/fs"
	"os"

	"git.timemachine.center/timemachine/instance-sync/repofile"
)

// The master key cache lets a pull read new snapshots' metadata itself
// instead of running restic (whose key derivation alone takes most of a
// second). It unlocks the repository exactly as the token's password does,
// so it is kept like the token: mode 0600, outside the instance folder (in
// the user's cache folder, Paths.KeyFile).

// LoadMasterKey reads the cached master key. Any problem (none cached, a
// damaged file, a file others can read) means no key: the cache is only
// a shortcut, and the caller asks restic again.
func (p Paths) LoadMasterKey() (repofile.Key, bool) {
	if p.KeyFile == "" {
		return repofile.Key{}, false
	}
	fi, err := os.Stat(p.MasterKey())
	if err != nil || readableByOthers(fi) {
		return repofile.Key{}, false
	}
	data, err := os.ReadFile(p.MasterKey())
	if err != nil {
		return repofile.Key{}, false
	}
	k, err := repofile.ParseMasterKey(data)
	clear(data)
	return k, err == nil
}

// SaveMasterKey caches the master key, mode 0600.
func (p Paths) SaveMasterKey(k repofile.Key) error {
	if p.KeyFile == "" {
		return nil
	}
	data, err := k.MarshalJSON()
	if err != nil {
		return err
	}
	defer clear(data)
	return WriteSecret(p.MasterKey(), append(data, '\n'))
}

// ForgetMasterKey removes the cached key (it no longer opens the
// repository's files, or the instance now has another repository).
func (p Paths) ForgetMasterKey() error {
	if p.KeyFile == "" {
		return nil
	}
	if err := os.Remove(p.MasterKey()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
