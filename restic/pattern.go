package restic

import (
	"runtime"
	"strings"
)

// LiteralPattern is p (a slash-separated snapshot path) as a restic
// --include/--exclude pattern that matches p alone. restic matches each
// part of a pattern with filepath.Match, so each of * ? [ becomes a class
// of its own ("[*]"), which reads as that character on every OS, and a
// backslash is escaped inside one. A part "**" is thereby no longer
// restic's any-depth wildcard. ok is false for a backslash on Windows,
// where it separates parts (such a name cannot be written there anyway).
func LiteralPattern(p string) (pattern string, ok bool) {
	if !strings.ContainsAny(p, `*?[\`) {
		return p, true
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ { // bytes: a name need not be UTF-8
		switch c := p[i]; c {
		case '*', '?', '[':
			b.WriteByte('[')
			b.WriteByte(c)
			b.WriteByte(']')
		case '\\':
			if runtime.GOOS == "windows" {
				return "", false
			}
			b.WriteString(`[\\]`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}
