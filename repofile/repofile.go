// Package repofile reads restic repository files directly, given the
// repository's master key: it authenticates and decrypts a file, unpacks
// its (possibly compressed) JSON and decodes snapshots. Reading a snapshot
// this way takes microseconds; asking restic costs a process start and
// restic's scrypt key derivation, most of a second.
//
// It reads, and writes only what a new repository starts with (its key
// and config, CreateRepository). The format is restic's design document
// ("Repository Format", "Unpacked Data Format", "Keys, Encryption and
// MAC").
package repofile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"git.timemachine.center/timemachine/instance-sync/restic"
	"github.com/klauspost/compress/zstd"
)

// maxUnpacked bounds what Unpack returns. Snapshot files are a few hundred
// bytes; the bound keeps a hostile file that decompresses to gigabytes
// from exhausting memory.
const maxUnpacked = 16 << 20

// ErrIDMismatch means a file's SHA-256 is not its name: it was changed
// after restic wrote it, or it is another file.
var ErrIDMismatch = errors.New("file content does not match its id")

// Encoding versions of an unpacked file's first byte.
const (
	encodingZstd = 2
	// Repository format 1 has no header: the plaintext is a JSON object or
	// array, and these are its first bytes.
	encodingJSONObject = '{'
	encodingJSONArray  = '['
)

// Unpack turns the plaintext of an index, lock or snapshot file into its
// JSON document: as is in a repository of format 1, decompressed in
// format 2.
func Unpack(plain []byte) ([]byte, error) {
	if len(plain) == 0 {
		return nil, errors.New("empty file")
	}
	switch plain[0] {
	case encodingJSONObject, encodingJSONArray:
		if len(plain) > maxUnpacked {
			return nil, fmt.Errorf("JSON is %d bytes, more than the %d MiB allowed", len(plain), maxUnpacked>>20)
		}
		return plain, nil
	case encodingZstd:
		// A decoder per call: files are read a few at a time, and a shared
		// one would be state to guard. Concurrency 1 decodes in this
		// goroutine.
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(maxUnpacked),
			zstd.WithDecoderMaxWindow(maxUnpacked))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		out, err := d.DecodeAll(plain[1:], nil)
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
			return nil, fmt.Errorf("compressed JSON unpacks to more than the %d MiB allowed", maxUnpacked>>20)
		}
		if err != nil {
			return nil, fmt.Errorf("compressed JSON: %v", err)
		}
		if len(out) == 0 {
			return nil, errors.New("compressed JSON: no data")
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unknown encoding version %d (a newer restic?)", plain[0])
	}
}

// Snapshot decodes the snapshot file named id, as stored in the
// repository's snapshots/ folder: it checks the name is the file's SHA-256
// (ErrIDMismatch), authenticates and decrypts it (ErrMAC), unpacks it and
// decodes the JSON. The returned snapshot's ID is id.
func (k Key) Snapshot(id string, file []byte) (restic.Snapshot, error) {
	sum := sha256.Sum256(file)
	if hex.EncodeToString(sum[:]) != id {
		return restic.Snapshot{}, fmt.Errorf("snapshot %s: %w (sha256 %x)", short(id), ErrIDMismatch, sum[:4])
	}
	plain, err := k.Open(file)
	if err != nil {
		return restic.Snapshot{}, fmt.Errorf("snapshot %s: %w", short(id), err)
	}
	doc, err := Unpack(plain)
	if err != nil {
		return restic.Snapshot{}, fmt.Errorf("snapshot %s: %w", short(id), err)
	}
	var s restic.Snapshot
	if err := json.Unmarshal(doc, &s); err != nil {
		return restic.Snapshot{}, fmt.Errorf("snapshot %s: %v", short(id), err)
	}
	// An index or lock file opens with the same key and decodes to an
	// empty snapshot; every snapshot has a tree and a time.
	var root struct {
		Tree string `json:"tree"`
	}
	if json.Unmarshal(doc, &root) != nil || len(root.Tree) != 64 || s.Time.IsZero() {
		return restic.Snapshot{}, fmt.Errorf("snapshot %s: no tree or time; not a snapshot file", short(id))
	}
	s.ID = id
	return s, nil
}

// short is the id as restic abbreviates it in messages.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
