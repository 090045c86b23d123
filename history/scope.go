package history

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
)

// tagScope prefixes the tag that records the effective scope of the
// computer that made a snapshot (version 1 of its encoding).
const tagScope = "scope:v1:"

// maxScopeTag bounds the scope tag: restic's arguments share Windows'
// 32767-character command line with the other tags.
const maxScopeTag = 8000

// Scope is the effective scope a snapshot's maker synced: its include
// entries, exclude patterns and the files packwiz owned inside the
// include entries. A puller only deletes a file the snapshot lacks when
// the maker synced it ("deleted there", not "not synced there").
type Scope struct {
	Include []string `json:"i"`
	Exclude []string `json:"e,omitempty"`
	Packwiz []string `json:"p,omitempty"`
	// Partial means the packwiz list was too long for the tag and was
	// left out: which files the maker synced is not known exactly.
	Partial bool `json:"x,omitempty"`
}

// ScopeTag encodes sc as one restic tag: compact JSON, deflated, in
// unpadded base64url (no commas, which restic would split at). When the
// packwiz list makes it longer than maxScopeTag, the list is left out and
// the scope marked Partial.
func ScopeTag(sc Scope) string {
	t := encodeScope(sc)
	if len(t) > maxScopeTag {
		sc.Packwiz, sc.Partial = nil, true
		t = encodeScope(sc)
	}
	return t
}

func encodeScope(sc Scope) string {
	js, _ := json.Marshal(sc)
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	w.Write(js)
	w.Close()
	return tagScope + base64.RawURLEncoding.EncodeToString(buf.Bytes())
}

// parseScopeTag decodes a scope tag; ok is false for anything else or
// a tag that does not decode (which counts as no scope recorded).
func parseScopeTag(t string) (sc *Scope, ok bool) {
	enc, ok := strings.CutPrefix(t, tagScope)
	if !ok {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return nil, false
	}
	js, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(raw)), 1<<20))
	if err != nil {
		return nil, false
	}
	var out Scope
	if json.Unmarshal(js, &out) != nil || len(out.Include) == 0 {
		return nil, false
	}
	return &out, true
}
