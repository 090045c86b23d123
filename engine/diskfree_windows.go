package engine

import "golang.org/x/sys/windows"

// diskFree is the space the user can still write on the volume holding
// path; ok is false when it cannot be told.
func diskFree(path string) (free int64, ok bool) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, false
	}
	var avail uint64
	if windows.GetDiskFreeSpaceEx(p, &avail, nil, nil) != nil {
		return 0, false
	}
	return int64(avail), true
}
