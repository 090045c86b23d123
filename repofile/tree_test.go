package repofile

import "testing"

// restic stores names Go-quoted inside the JSON; any byte comes back.
func TestParseTreeNames(t *testing.T) {
	plain := []byte(`{"nodes":[{"name":"new\\nline","type":"file","size":3,"mtime":"2026-11-30T05:00:00.123456789+01:00"},{"name":"\\xff\\\\x","type":"dir","subtree":"` + zeros64 + `"}]}`)
	nodes, err := ParseTree(plain)
	if err != nil {
		t.Fatal(err)
	}
	if nodes[0].Name != "new\nline" || nodes[0].Size != 3 || nodes[0].MTime.Nanosecond() != 123456789 {
		t.Fatalf("node 0: %+v", nodes[0])
	}
	if nodes[1].Name != "\xff\\x" || nodes[1].Type != "dir" {
		t.Fatalf("node 1: %q", nodes[1].Name)
	}
}

// A tree whose names would lead outside the folder is refused.
func TestParseTreeHostileNames(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", "a\\x00b"} {
		plain := []byte(`{"nodes":[{"name":"` + name + `","type":"file"}]}`)
		if _, err := ParseTree(plain); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if _, err := ParseTree([]byte(`{"nodes":[{"name":"d","type":"dir"}]}`)); err == nil {
		t.Error("a folder without a subtree accepted")
	}
}

const zeros64 = "0000000000000000000000000000000000000000000000000000000000000000"
