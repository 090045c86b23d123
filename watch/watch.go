// Package watch is the change watcher that runs between the launcher's
// pre-launch pull and its post-exit push.
//
// A push has to know whether anything in the sync scope changed since the
// last sync. Without help that means a stat of every file: tens of
// milliseconds on a 10,000-file instance, every time the game exits. The
// pull starts a watcher instead (a copy of instance-sync run as
// "instance-sync watch"). It watches every folder of the scope, then walks
// the scope once and compares it with the manifest of the last sync. If
// both match, it waits; the first change in scope ends it. When the game
// has exited, the push asks it whether nothing changed. A "clean" answer,
// for the same last sync, lets the push skip its walk. Any other answer,
// or no watcher at all, means the push walks as before, so the watcher
// only ever saves time and never decides what is pushed.
//
// Linux: inotify, and an abstract unix socket that only the same user may
// use. Windows: ReadDirectoryChangesW on an I/O completion port, and a
// loopback port whose address and per-run secret are in the user's
// %LocalAppData%. Elsewhere Supported is false and pushes always walk.
package watch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Base is the sync a watcher checked the files against: the last synced
// snapshot, the digest of its manifest and the fingerprint of the scope
// it walked (a scope.json or packwiz.json edited since means another walk).
type Base struct {
	Last   string
	Digest string
	Scope  string
}

// Requests a client sends.
const (
	// Ping asks for the answer; a clean watcher keeps watching.
	Ping byte = 'p'
	// Quit asks for the answer, after which the watcher exits.
	Quit byte = 'q'
)

// MaxAge bounds a watcher's life: a launcher that never ran the push hook
// does not leave it running for good.
const MaxAge = 24 * time.Hour

var (
	// ErrNotRunning means no watcher answers for the folder.
	ErrNotRunning = errors.New("no change watcher is running for this folder")
	// ErrChanged means something in the sync scope changed since the
	// watcher started.
	ErrChanged = errors.New("files in the sync scope changed")
)

// socketName is the abstract socket of the watcher of pack (an absolute
// path), one per user and folder.
func socketName(pack string) string {
	sum := sha256.Sum256([]byte(pack))
	return fmt.Sprintf("@instance-sync/watch/%d/%x", os.Getuid(), sum[:16])
}

// InfoName names the files of pack's watcher in
// %LocalAppData%\instance-sync\watch: "<name>.addr" exists while it
// answers. Windows paths ignore case, and so does the name.
func InfoName(pack string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(pack)))
	return hex.EncodeToString(sum[:16])
}

// reply is the watcher's answer line.
func reply(b Base, changed bool) string {
	if changed {
		return "changed\n"
	}
	return "clean\t" + b.Last + "\t" + b.Digest + "\t" + b.Scope + "\n"
}

// parseReply reads the watcher's answer line.
func parseReply(line string) (Base, error) {
	line = strings.TrimSuffix(line, "\n")
	if line == "changed" {
		return Base{}, ErrChanged
	}
	f := strings.Split(line, "\t")
	if len(f) != 4 || f[0] != "clean" {
		return Base{}, fmt.Errorf("change watcher: unexpected answer %q", line)
	}
	return Base{Last: f[1], Digest: f[2], Scope: f[3]}, nil
}
