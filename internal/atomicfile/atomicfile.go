// Package atomicfile writes files so that a reader, or a process killed at
// any moment, sees either the old content or the new one, never a mix.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write replaces path with data: temp file in the same folder, fsync,
// rename over path, fsync the folder.
func Write(path string, data []byte, perm os.FileMode) error {
	tmp, err := Stage(path, data, perm)
	if err != nil {
		return err
	}
	return Commit(tmp, path)
}

// Stage writes data to a durable temp file beside path and returns its
// name; Commit puts it in place, Discard drops it. Between the two, path
// still holds the old content.
func Stage(path string, data []byte, perm os.FileMode) (tmp string, err error) {
	return StageFunc(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// StageFunc is Stage with the content written by write, which may write
// it in pieces (a large file is never held in memory whole).
func StageFunc(path string, perm os.FileMode, write func(w io.Writer) error) (tmp string, err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	tmp = f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if err = write(f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return tmp, nil
}

// Commit renames the staged tmp over path and makes the rename durable.
func Commit(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// Discard removes a staged file that will not be committed.
func Discard(tmp string) { os.Remove(tmp) }

// syncDir makes a rename durable. Not all systems support it (Windows), so
// failures are ignored: the rename itself is still atomic.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	d.Close()
}
