package launcher

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
)

// iniFormat is which of the two file formats a Prism/MultiMC config is in.
type iniFormat int

const (
	// qsettingsINI is Prism Launcher 8 and later: QSettings IniFormat under
	// [General], marked by a ConfigVersion key.
	qsettingsINI iniFormat = iota
	// legacyINI is MultiMC and Prism before 8: bare key=value lines with
	// MultiMC's own escapes (\\ \n \t \#).
	legacyINI
)

// iniDoc edits a launcher config line by line so that every line it does not
// own stays byte-for-byte as the launcher wrote it.
type iniDoc struct {
	lines  []string // each with its own line ending
	format iniFormat
	prism  bool // Prism's reader of the legacy format strips some quotes
	eol    string
}

func parseINI(data []byte, prism bool) *iniDoc {
	d := &iniDoc{prism: prism, eol: "\n", format: legacyINI}
	s := string(data)
	if strings.Contains(s, "\r\n") {
		d.eol = "\r\n"
	}
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			d.lines = append(d.lines, s)
			break
		}
		d.lines = append(d.lines, s[:i+1])
		s = s[i+1:]
	}
	if prism {
		if _, ok := d.find("ConfigVersion"); ok {
			d.format = qsettingsINI
		}
	}
	return d
}

func (d *iniDoc) bytes() []byte { return []byte(strings.Join(d.lines, "")) }

// section returns the section header of a line, or ok=false.
func lineSection(line string) (string, bool) {
	t := strings.TrimSpace(line)
	if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
		return t[1 : len(t)-1], true
	}
	return "", false
}

// lineKey returns the key of a key=value line.
func lineKey(line string) (string, bool) {
	t := strings.TrimSpace(line)
	if t == "" || t[0] == ';' || t[0] == '#' {
		return "", false
	}
	k, _, ok := strings.Cut(t, "=")
	if !ok {
		return "", false
	}
	return strings.TrimSpace(k), true
}

// generalRange is the block of lines where the launcher keeps its settings:
// the [General] section of a QSettings file, or everything before the first
// section header of a legacy file.
func (d *iniDoc) generalRange() (start, end int) {
	header := -1
	for i, l := range d.lines {
		if name, ok := lineSection(l); ok && name == "General" {
			header = i
			break
		}
	}
	start = header + 1
	end = len(d.lines)
	for i := start; i < len(d.lines); i++ {
		if _, ok := lineSection(d.lines[i]); ok {
			end = i
			break
		}
	}
	return start, end
}

func (d *iniDoc) find(key string) (int, bool) {
	start, end := d.generalRange()
	for i := start; i < end; i++ {
		if k, ok := lineKey(d.lines[i]); ok && k == key {
			return i, true
		}
	}
	return 0, false
}

// raw returns the undecoded value text of key.
func (d *iniDoc) raw(key string) (string, bool) {
	i, ok := d.find(key)
	if !ok {
		return "", false
	}
	_, v, _ := strings.Cut(strings.TrimRight(d.lines[i], "\r\n"), "=")
	return v, true
}

func (d *iniDoc) get(key string) (string, bool, error) {
	r, ok := d.raw(key)
	if !ok {
		return "", false, nil
	}
	v, err := d.decode(r)
	return v, true, err
}

func (d *iniDoc) setRaw(key, raw string) {
	if i, ok := d.find(key); ok {
		l := d.lines[i]
		ending := l[len(strings.TrimRight(l, "\r\n")):]
		eq := strings.IndexByte(l, '=')
		d.lines[i] = l[:eq+1] + raw + ending
		return
	}
	// Insert where the launcher itself would put it (its keys are sorted), so
	// its next rewrite of the file moves nothing.
	start, end := d.generalRange()
	at := end
	for i := start; i < end; i++ {
		if k, ok := lineKey(d.lines[i]); ok && k > key {
			at = i
			break
		}
	}
	if at == end {
		// after the last key, not after trailing blank lines
		for at > start && strings.TrimSpace(d.lines[at-1]) == "" {
			at--
		}
	}
	line := key + "=" + raw + d.eol
	if at > 0 && !strings.HasSuffix(d.lines[at-1], "\n") {
		// The file ends without a newline: keep it that way, so that
		// removing this line again restores the exact bytes.
		line = d.eol + key + "=" + raw
	}
	d.lines = append(d.lines[:at], append([]string{line}, d.lines[at:]...)...)
}

func (d *iniDoc) set(key, value string) error {
	raw, err := d.encode(key, value)
	if err != nil {
		return err
	}
	d.setRaw(key, raw)
	return nil
}

func (d *iniDoc) remove(key string) {
	i, ok := d.find(key)
	if !ok {
		return
	}
	if i == len(d.lines)-1 && i > 0 && !strings.HasSuffix(d.lines[i], "\n") {
		d.lines[i-1] = strings.TrimSuffix(strings.TrimSuffix(d.lines[i-1], "\n"), "\r")
	}
	d.lines = append(d.lines[:i], d.lines[i+1:]...)
}

func (d *iniDoc) encode(key, v string) (string, error) {
	if d.format == qsettingsINI {
		return qsettingsEscape(v), nil
	}
	r := strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\t", `\t`, "#", `\#`)
	out := r.Replace(v)
	if d.prism && prismUnquotes(v) {
		// Prism's reader of this old format would strip the outer quotes
		// and there is no escape that prevents it.
		return "", fmt.Errorf("%s would be misread by prism launcher (quoted value with ';', '=' or ','); open and close prism launcher once so it upgrades the file, then retry", key)
	}
	if strings.TrimSpace(out) != out {
		return "", fmt.Errorf("%s would lose its leading or trailing spaces in this file format; remove them and retry", key)
	}
	return out, nil
}

func prismUnquotes(v string) bool {
	return strings.ContainsAny(v, ";=,") && len(v) >= 2 && strings.HasPrefix(v, `"`) && strings.HasSuffix(v, `"`)
}

func (d *iniDoc) decode(raw string) (string, error) {
	if d.format == qsettingsINI {
		return qsettingsUnescape(raw)
	}
	line := raw
	for i := 0; i < len(line); i++ {
		if line[i] == '\\' {
			i++
			continue
		}
		if line[i] == '#' {
			line = line[:i]
			break
		}
	}
	line = strings.TrimSpace(line)
	var b strings.Builder
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '\\' && i+1 < len(line) {
			i++
			switch line[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(line[i])
			}
			continue
		}
		if c == '\\' {
			continue
		}
		b.WriteByte(c)
	}
	v := b.String()
	if d.prism && prismUnquotes(v) {
		v = v[1 : len(v)-1]
	}
	return v, nil
}

// qsettingsEscape writes a string the way QSettings IniFormat does: C-style
// escapes, non-ASCII as \x code units (readable by Qt 5 and Qt 6 alike), and
// the whole value in quotes when it holds ; , = or edge spaces.
func qsettingsEscape(v string) string {
	if strings.HasPrefix(v, "@") {
		v = "@" + v
	}
	var b strings.Builder
	needQuotes := false
	escapeNextHex := false
	for _, u := range utf16.Encode([]rune(v)) {
		if u == ';' || u == ',' || u == '=' {
			needQuotes = true
		}
		if escapeNextHex && isHexDigit(u) {
			b.WriteString(`\x` + strconv.FormatUint(uint64(u), 16))
			continue
		}
		escapeNextHex = false
		switch u {
		case 0:
			b.WriteString(`\0`)
			escapeNextHex = true
		case '\a':
			b.WriteString(`\a`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\v':
			b.WriteString(`\v`)
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(byte(u))
		default:
			if u <= 0x1f || u >= 0x7f {
				b.WriteString(`\x` + strconv.FormatUint(uint64(u), 16))
				escapeNextHex = true
			} else {
				b.WriteByte(byte(u))
			}
		}
	}
	out := b.String()
	if needQuotes || strings.HasPrefix(out, " ") || strings.HasSuffix(out, " ") {
		out = `"` + out + `"`
	}
	return out
}

func isHexDigit(u uint16) bool {
	return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'f') || (u >= 'A' && u <= 'F')
}

// qsettingsUnescape reads a value as QSettings does. A value that QSettings
// would read as a list (an unquoted comma) is refused: it is not a command.
func qsettingsUnescape(raw string) (string, error) {
	var units []uint16
	appendStr := func(s string) { units = append(units, utf16.Encode([]rune(s))...) }
	s := strings.TrimLeft(raw, " \t")
	inQuotes, quoted := false, false
	chopLimit := 0 // characters from escapes or quotes are never trimmed
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			i++
			if i >= len(s) {
				break
			}
			e := s[i]
			i++
			switch e {
			case 'a':
				units = append(units, '\a')
			case 'b':
				units = append(units, '\b')
			case 'f':
				units = append(units, '\f')
			case 'n':
				units = append(units, '\n')
			case 'r':
				units = append(units, '\r')
			case 't':
				units = append(units, '\t')
			case 'v':
				units = append(units, '\v')
			case '"', '?', '\'', '\\':
				units = append(units, uint16(e))
			case 'x':
				var val uint16
				digits := 0
				for i < len(s) && isHexDigit(uint16(s[i])) {
					n, _ := strconv.ParseUint(s[i:i+1], 16, 16)
					val = val*16 + uint16(n)
					i++
					digits++
				}
				if digits > 0 {
					units = append(units, val)
				}
			default:
				if e >= '0' && e <= '7' {
					val := uint16(e - '0')
					for i < len(s) && s[i] >= '0' && s[i] <= '7' {
						val = val*8 + uint16(s[i]-'0')
						i++
					}
					units = append(units, val)
				}
			}
			chopLimit = len(units)
		case c == '"':
			i++
			inQuotes = !inQuotes
			quoted = true
			if !inQuotes {
				for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
					i++
				}
			}
		case c == ',' && !inQuotes:
			return "", fmt.Errorf("value %q is a list, not a command", raw)
		default:
			j := i + 1
			for j < len(s) && s[j] != '\\' && s[j] != '"' && s[j] != ',' {
				j++
			}
			appendStr(s[i:j])
			i = j
		}
	}
	if !quoted {
		for len(units) > chopLimit && (units[len(units)-1] == ' ' || units[len(units)-1] == '\t') {
			units = units[:len(units)-1]
		}
	}
	v := string(utf16.Decode(units))
	if strings.HasPrefix(v, "@@") {
		v = v[1:]
	}
	return v, nil
}
