//go:build !windows

package engine

import "golang.org/x/sys/unix"

// diskFree is the space an unprivileged user can still write on the file
// system holding path; ok is false when it cannot be told.
func diskFree(path string) (free int64, ok bool) {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
