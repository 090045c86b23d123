package flaghint

import (
	"flag"
	"io"
	"testing"
)

func TestProblem(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--pakc-folder=x"}, "unknown flag --pakc-folder; did you mean --pack-folder?"},
		{[]string{"--packfolder"}, "unknown flag --packfolder; did you mean --pack-folder?"},
		{[]string{"-jsno"}, "unknown flag --jsno; did you mean --json?"},
		{[]string{"--frobnicate"}, "unknown flag --frobnicate"},
		{[]string{"--x"}, "unknown flag --x"},
		{[]string{"--pack-folder"}, "flag needs an argument: --pack-folder"},
		{[]string{"--json=maybe"}, `invalid boolean value "maybe" for -json: parse error`},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.String("pack-folder", "", "")
		fs.Bool("json", false, "")
		fs.Bool("g", false, "")
		err := fs.Parse(tt.args)
		if err == nil {
			t.Fatalf("%v parsed", tt.args)
		}
		if got := Problem(fs, err); got != tt.want {
			t.Errorf("%v: %q, want %q", tt.args, got, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "abc", 0}, {"pakc", "pack", 1}, {"tokenfile", "token-file", 1},
		{"kitten", "sitting", 3}, {"", "json", 4},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
