//go:build unix

package scope

import (
	"errors"
	"io/fs"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// readFolder calls fn with each entry of the open folder dir that skip
// does not refuse, in name order, with its kind and, for a file, its entry. It lists
// names only and stats each relative to the folder's descriptor: the
// stat says what the entry is, and spares the kernel resolving the whole
// path again for each of thousands of files. An entry deleted meanwhile
// is left out.
func readFolder(dir *os.File, skip func(name string) bool, fn func(name string, k kind, e Entry)) error {
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return err
	}
	// In name order, which the folder's files are kept in: sorting the
	// names is cheaper than sorting the files after.
	slices.Sort(names)
	fd := int(dir.Fd())
	var st unix.Stat_t
	for _, name := range names {
		if skip(name) {
			continue
		}
		for {
			err = unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
			if err != unix.EINTR {
				break
			}
		}
		if errors.Is(err, unix.ENOENT) {
			continue // deleted while walking
		}
		if err != nil {
			return &fs.PathError{Op: "fstatat", Path: name, Err: err}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			fn(name, kindDir, Entry{})
		case unix.S_IFREG:
			sec, nsec := st.Mtim.Unix()
			fn(name, kindFile, Entry{Size: st.Size, MTime: sec*1e9 + nsec, Mode: uint32(st.Mode) & 0o777})
		default:
			fn(name, kindOther, Entry{})
		}
	}
	return nil
}
