package repofile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/klauspost/compress/zstd"
)

// maxBlob bounds one blob's plaintext: restic's chunks are at most 8 MiB
// and its trees far smaller than that for a Minecraft instance.
const maxBlob = 64 << 20

// BlobLocation is where a blob lies in the repository's data files.
type BlobLocation struct {
	Pack         string // the data file's id
	Offset       int64
	Length       int64 // stored (encrypted) length
	Uncompressed int64 // plaintext length when the blob is compressed, else 0
}

// Index decodes the index file named id and returns where each tree blob
// and each data blob lies.
func (k Key) Index(id string, file []byte) (trees, data map[string]BlobLocation, err error) {
	sum := sha256.Sum256(file)
	if hex.EncodeToString(sum[:]) != id {
		return nil, nil, fmt.Errorf("index %s: %w", short(id), ErrIDMismatch)
	}
	plain, err := k.Open(file)
	if err != nil {
		return nil, nil, fmt.Errorf("index %s: %w", short(id), err)
	}
	doc, err := Unpack(plain)
	if err != nil {
		return nil, nil, fmt.Errorf("index %s: %w", short(id), err)
	}
	var idx struct {
		Packs []struct {
			ID    string `json:"id"`
			Blobs []struct {
				ID           string `json:"id"`
				Type         string `json:"type"`
				Offset       int64  `json:"offset"`
				Length       int64  `json:"length"`
				Uncompressed int64  `json:"uncompressed_length"`
			} `json:"blobs"`
		} `json:"packs"`
	}
	if err := json.Unmarshal(doc, &idx); err != nil {
		return nil, nil, fmt.Errorf("index %s: %v", short(id), err)
	}
	trees, data = map[string]BlobLocation{}, map[string]BlobLocation{}
	for _, p := range idx.Packs {
		for _, b := range p.Blobs {
			loc := BlobLocation{Pack: p.ID, Offset: b.Offset, Length: b.Length, Uncompressed: b.Uncompressed}
			switch {
			case b.Type == "tree":
				trees[b.ID] = loc
			case b.Type == "data":
				data[b.ID] = loc
			}
		}
	}
	return trees, data, nil
}

// PlainLength is the length of a blob's content: restic stores each blob
// encrypted, a 16-byte IV before it and a 16-byte MAC after it, and
// compressed when Uncompressed says so.
func (l BlobLocation) PlainLength() int64 {
	if l.Uncompressed > 0 {
		return l.Uncompressed
	}
	return l.Length - 32
}

// Blob authenticates, decrypts and (when loc says it is compressed)
// decompresses the blob id as stored, and checks that its SHA-256 is id.
func (k Key) Blob(id string, loc BlobLocation, stored []byte) ([]byte, error) {
	plain, err := k.Open(stored)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", short(id), err)
	}
	if loc.Uncompressed > 0 {
		if loc.Uncompressed > maxBlob {
			return nil, fmt.Errorf("blob %s: %d bytes, more than the %d MiB allowed", short(id), loc.Uncompressed, maxBlob>>20)
		}
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxBlob))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		if plain, err = d.DecodeAll(plain, make([]byte, 0, loc.Uncompressed)); err != nil {
			return nil, fmt.Errorf("blob %s: %v", short(id), err)
		}
	}
	sum := sha256.Sum256(plain)
	if hex.EncodeToString(sum[:]) != id {
		return nil, fmt.Errorf("blob %s: %w", short(id), ErrIDMismatch)
	}
	return plain, nil
}

// Node is one entry of a tree: a file, folder, symlink or other item.
type Node struct {
	Name    string    `json:"name"`
	Type    string    `json:"type"` // file, dir, symlink, dev, chardev, fifo, socket, irregular
	Mode    uint32    `json:"mode"`
	MTime   time.Time `json:"mtime"`
	Size    int64     `json:"size"`
	Subtree string    `json:"subtree"` // a folder's tree
	// Content is a file's data blobs, in order: two files with the same
	// content list hold the same bytes, whatever their mtimes.
	Content []string `json:"content"`
}

// ParseTree decodes a tree blob's plaintext.
func ParseTree(plain []byte) ([]Node, error) {
	var t struct {
		Nodes []Node `json:"nodes"`
	}
	if err := json.Unmarshal(plain, &t); err != nil {
		return nil, fmt.Errorf("tree: %v", err)
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		// restic stores a name Go-quoted (without the quotes) inside the
		// JSON, so that any byte survives: "\n", "\xff".
		name, err := strconv.Unquote(`"` + n.Name + `"`)
		if err != nil {
			return nil, fmt.Errorf("tree: node name %q: %v", n.Name, err)
		}
		n.Name = name
		if n.Name == "" || n.Name == "." || n.Name == ".." || containsSlash(n.Name) {
			return nil, fmt.Errorf("tree: a node is named %q", n.Name)
		}
		if n.Type == "dir" && len(n.Subtree) != 64 {
			return nil, errors.New("tree: a folder without a subtree")
		}
	}
	return t.Nodes, nil
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' || s[i] == 0 {
			return true
		}
	}
	return false
}
