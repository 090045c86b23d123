//go:build unix

package scope

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// statIn stats the entry d of the open folder dir relative to the folder's
// descriptor, which spares the kernel resolving the whole path again for
// each of thousands of files.
func statIn(dir *os.File, d fs.DirEntry) (Entry, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(int(dir.Fd()), d.Name(), &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return Entry{}, &fs.PathError{Op: "fstatat", Path: d.Name(), Err: err}
		}
		break
	}
	sec, nsec := st.Mtim.Unix()
	return Entry{Size: st.Size, MTime: sec*1e9 + nsec, Mode: uint32(st.Mode) & 0o777}, nil
}
