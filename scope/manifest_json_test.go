package scope

import (
	"encoding/json"
	"reflect"
	"testing"
)

// decodeStd is what encoding/json makes of a manifest without the fast path.
func decodeStd(data []byte) (map[string]Entry, error) {
	var m map[string]Entry
	err := json.Unmarshal(data, &m)
	return m, err
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
		want, werr := decodeStd([]byte(in))
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
	if _, ok := parseManifest(data); !ok {
		t.Fatalf("the fast path does not take what encoding/json writes: %s", data)
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
		want, werr := decodeStd(data)
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
// encoding/json's, for names it writes as they are and names it escapes.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	for _, m := range []Manifest{
		{},
		{"saves/World 1/region/r.0.0.mca": {Size: 3 << 20, MTime: 1764000000123456789, Mode: 0o644}, "options.txt": {MTime: -1, Mode: 0o600}},
		{"a\"b\\c": {Size: 1}, "tab\there": {}, "<script>&": {Mode: 0o777}, "é/ü": {Size: -1}, "bad\xffutf8": {}, "\u2028": {}, "z": {}},
	} {
		want, err := json.Marshal(map[string]Entry(m))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.AppendJSON(nil); string(got) != string(want) {
			t.Errorf("AppendJSON:\n got %s\nwant %s", got, want)
		}
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("saves/World/level.dat", int64(5), int64(1764000000000000000), uint32(0o644))
	f.Add("a\"<\xff", int64(-1), int64(0), uint32(0))
	f.Fuzz(func(t *testing.T, p string, size, mtime int64, mode uint32) {
		m := Manifest{p: {Size: size, MTime: mtime, Mode: mode}, "options.txt": {Size: 1}}
		want, err := json.Marshal(map[string]Entry(m))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("AppendJSON:\n got %s\nwant %s", got, want)
		}
	})
}
