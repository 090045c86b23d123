//go:build !windows

package instance

// protectDir does nothing more on Unix: MkdirPrivate made the folder with
// mode 0700.
func protectDir(string) error { return nil }
