// Package worldlock tells whether a running game has a world open.
// Minecraft holds a lock on <world>/session.lock while the world is loaded
// (an fcntl lock on Unix, LockFileEx on Windows); probing that lock never
// takes it away from the game.
package worldlock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrOpen means a world is open in a running game.
var ErrOpen = errors.New("world is open in a running game")

// OpenError names the open world.
type OpenError struct{ World string }

func (e *OpenError) Error() string {
	return fmt.Sprintf("world %q is open in a running game; close Minecraft (or leave the world) and try again", e.World)
}

func (e *OpenError) Unwrap() error { return ErrOpen }

// Check returns an *OpenError for the first world under pack/saves whose
// session.lock is held by another process.
func Check(pack string) error {
	saves := filepath.Join(pack, "saves")
	entries, err := os.ReadDir(saves)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		held, err := Held(filepath.Join(saves, e.Name(), "session.lock"))
		if err != nil {
			return err
		}
		if held {
			return &OpenError{World: e.Name()}
		}
	}
	return nil
}
