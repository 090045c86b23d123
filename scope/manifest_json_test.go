package scope

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
)

// decodeStd is what encoding/json makes of a manifest without the fast
// path, names that are not UTF-8 decoded.
func decodeEncodingJSON(data []byte) (map[string]Entry, error) {
	var m map[string]Entry
	err := json.Unmarshal(data, &m)
	for k, e := range m {
		if p, ok := fromRawKey(k); ok {
			delete(m, k)
			m[p] = e
		}
	}
	return m, err
}

// sameJSON compares AppendJSON's bytes with encoding/json's. Names that
// are not UTF-8 are written as rawKey (encoding/json would replace their
// bytes), where the order of members may differ from encoding/json's, so
// with such names the two are compared as decoded objects.
func sameJSON(t testing.TB, m Manifest) {
	t.Helper()
	std, raw := map[string]Entry{}, false
	for p, e := range m {
		if !utf8.ValidString(p) {
			p, raw = rawKey(p), true
		}
		std[p] = e
	}
	want, err := json.Marshal(std)
	if err != nil {
		t.Fatal(err)
	}
	got := m.AppendJSON(nil)
	if raw {
		var g, w map[string]Entry
		if json.Unmarshal(got, &g) != nil || json.Unmarshal(want, &w) != nil || !reflect.DeepEqual(g, w) {
			t.Fatalf("AppendJSON:\n got %s\nwant %s", got, want)
		}
		return
	}
	if string(got) != string(want) {
		t.Fatalf("AppendJSON:\n got %s\nwant %s", got, want)
	}
}

// TestManifestKeepsEveryByte: names with newlines, carriage returns, tabs
// and bytes that are not UTF-8 come back exactly as they were written.
func TestManifestKeepsEveryByte(t *testing.T) {
	m := Manifest{
		"saves/W/new\nline.dat": {Size: 1}, "saves/W/cr\rname": {Size: 2}, "saves/W/tab\tname": {Size: 3},
		"saves/W/latin1-\xe9\xff.dat": {Size: 4}, "saves/\x80\n/level.dat": {Size: 5}, "saves/W/\xef\xbf\xbd": {Size: 6},
		"saves/W/\xff": {Size: 7}, "options.txt": {Size: 8},
	}
	data := m.AppendJSON(nil)
	if !utf8.Valid(data) {
		t.Fatalf("the manifest is not UTF-8: %q", data)
	}
	var got Manifest
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip:\n got %v\nwant %v", got, m)
	}
	if got.Digest() != m.Digest() {
		t.Fatal("the digest changed in the round trip")
	}
}

func TestManifestUnmarshalMatchesEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{}`,
		`null`,
		`{"saves/w/level.dat":{"s":12,"m":1764000000000000000,"p":420}}`,
		`{"a":{"p":420,"m":-5,"s":0},"b":{"s":1,"m":2,"p":3}}`,
		`{"a":{"s":1,"m":2,"p":3},"a":{"s":4,"m":5,"p":6}}`,
		`{"a\"b":{"s":1,"m":2,"p":3}}`,
		`{"é/ü":{"s":1,"m":2,"p":3}}`,
		`{ "a" : {"s":1} }`,
		`{"a":{"s":1,"x":2}}`,
		`{"a":{"s":1,"s":2}}`,
		`{"a":{"s":01}}`,
		`{"a":{"s":1e3}}`,
		`{"a":{"p":4294967296}}`,
		`{"a":{"s":1},}`,
		`{"a":{"s":1}`,
		`{"a":{}}`,
		`[]`,
	} {
		want, werr := decodeEncodingJSON([]byte(in))
		var got Manifest
		gerr := json.Unmarshal([]byte(in), &got)
		if (werr == nil) != (gerr == nil) {
			t.Errorf("%s: error %v, encoding/json says %v", in, gerr, werr)
			continue
		}
		if werr == nil && !reflect.DeepEqual(map[string]Entry(got), want) {
			t.Errorf("%s: got %v, encoding/json makes %v", in, got, want)
		}
	}
}

func TestManifestRoundTrip(t *testing.T) {
	m := Manifest{"saves/World 1/region/r.0.0.mca": {Size: 3 << 20, MTime: 1764000000123456789, Mode: 0o644}, "options.txt": {Size: 0, MTime: -1, Mode: 0o600}}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := ScanManifest(bytes.NewReader(data), func(string, Entry) error { return nil }); err != nil {
		t.Fatalf("the streaming reader does not take what encoding/json writes: %s: %v", data, err)
	}
	var got Manifest
	if err := json.Unmarshal(data, &got); err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip: %v %v", got, err)
	}
}

func FuzzManifestUnmarshal(f *testing.F) {
	f.Add([]byte(`{"a":{"s":1,"m":2,"p":3}}`))
	f.Add([]byte(`{"a":{"p":420,"m":-5,"s":0},"b":{"s":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		want, werr := decodeEncodingJSON(data)
		var got Manifest
		gerr := json.Unmarshal(data, &got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: error %v, encoding/json says %v", data, gerr, werr)
		}
		if werr == nil && !reflect.DeepEqual(map[string]Entry(got), want) {
			t.Fatalf("%q: got %v, encoding/json makes %v", data, got, want)
		}
	})
}

// TestAppendJSONMatchesEncodingJSON: the manifest writer's bytes are
// encoding/json's, for names it writes as they are and names it escapes
// (names that are not UTF-8 as rawKey).
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	for _, m := range []Manifest{
		{},
		{"saves/World 1/region/r.0.0.mca": {Size: 3 << 20, MTime: 1764000000123456789, Mode: 0o644}, "options.txt": {MTime: -1, Mode: 0o600}},
		{"a\"b\\c": {Size: 1}, "tab\there": {}, "<script>&": {Mode: 0o777}, "é/ü": {Size: -1}, "bad\xffutf8": {}, "\u2028": {}, "z": {}},
	} {
		sameJSON(t, m)
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("saves/World/level.dat", int64(5), int64(1764000000000000000), uint32(0o644))
	f.Add("a\"<\xff", int64(-1), int64(0), uint32(0))
	f.Fuzz(func(t *testing.T, p string, size, mtime int64, mode uint32) {
		m := Manifest{p: {Size: size, MTime: mtime, Mode: mode}, "options.txt": {Size: 1}}
		sameJSON(t, m)
	})
}
