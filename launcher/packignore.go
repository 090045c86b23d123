package launcher

import (
	"fmt"
	"os"
	"path/filepath"

	"git.timemachine.center/timemachine/instance-sync/instance"
)

// gameFolders are the names Prism Launcher and MultiMC give an instance's
// game folder (its pack folder) inside the instance folder.
var gameFolders = []string{".minecraft", "minecraft"}

// exportIgnores keeps launcher exports from carrying the sync state: it
// lists each pack folder's .cloud-sync in its instance's .packignore (add)
// or takes that line out again (uninstall), leaving the player's lines
// byte for byte. An instance install covers that instance; a launcher-wide
// one every instance already opted in (install) or every instance
// (uninstall). ATLauncher has no such list. Problems become notes: the
// hooks themselves are in place either way.
func (o Options) exportIgnores(t target, add bool) []string {
	if o.Launcher != Prism && o.Launcher != MultiMC {
		return nil
	}
	var roots []string
	if t.instance {
		roots = []string{filepath.Dir(t.file)}
	} else {
		entries, err := os.ReadDir(o.instancesDir(filepath.Dir(t.file)))
		if err != nil {
			return nil
		}
		for _, e := range entries {
			root := filepath.Join(o.instancesDir(filepath.Dir(t.file)), e.Name())
			if exists(filepath.Join(root, "instance.cfg")) {
				roots = append(roots, root)
			}
		}
	}
	var notes []string
	for _, root := range roots {
		file := filepath.Join(root, instance.PackIgnoreName)
		for _, game := range gameFolders {
			pack := filepath.Join(root, game)
			if fi, err := os.Stat(pack); err != nil || !fi.IsDir() {
				continue
			}
			entry := game + "/" + instance.DirName
			var changed bool
			var err error
			switch {
			case add && (t.instance || exists(filepath.Join(pack, instance.DirName))):
				changed, err = instance.AddPackIgnore(file, entry)
			case !add:
				changed, err = instance.RemovePackIgnore(file, entry)
			}
			switch {
			case err != nil && add:
				notes = append(notes, fmt.Sprintf("%s: cannot list %s there (%v); an export of this instance would carry its sync state", file, entry, err))
			case err != nil:
				notes = append(notes, fmt.Sprintf("%s: cannot take %s out (%v); remove that line by hand", file, entry, err))
			case changed && add:
				notes = append(notes, fmt.Sprintf("%s: lists %s, so exporting the instance leaves its sync state out", file, entry))
			case changed:
				notes = append(notes, fmt.Sprintf("%s: %s taken out; your own lines are as they were", file, entry))
			}
		}
	}
	return notes
}
