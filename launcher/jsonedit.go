package launcher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// jsonDoc edits one object of an ATLauncher JSON file in place: members are
// replaced, added after the last member or removed, and every other byte is
// kept, so a change can be undone exactly.
type jsonDoc struct {
	data []byte
	path []string // member names leading to the edited object ("launcher")
}

type jsonMember struct {
	key                     string
	start, valStart, valEnd int // start: the opening quote of the key
}

func parseJSONDoc(data []byte, path ...string) (*jsonDoc, error) {
	if !json.Valid(data) {
		return nil, errors.New("not valid JSON")
	}
	d := &jsonDoc{data: data, path: path}
	if _, _, err := d.object(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *jsonDoc) bytes() []byte { return d.data }

// object finds the edited object and returns the offsets of its braces.
func (d *jsonDoc) object() (open, close int, err error) {
	open = skipSpace(d.data, 0)
	if open >= len(d.data) || d.data[open] != '{' {
		return 0, 0, errors.New("top level is not an object")
	}
	for _, name := range d.path {
		ms, _, err := members(d.data, open)
		if err != nil {
			return 0, 0, err
		}
		found := false
		for _, m := range ms {
			if m.key == name && d.data[m.valStart] == '{' {
				open, found = m.valStart, true
				break
			}
		}
		if !found {
			return 0, 0, fmt.Errorf("no %q object", name)
		}
	}
	_, close, err = members(d.data, open)
	return open, close, err
}

func (d *jsonDoc) members() ([]jsonMember, int, error) {
	open, _, err := d.object()
	if err != nil {
		return nil, 0, err
	}
	return members(d.data, open)
}

func (d *jsonDoc) find(key string) (jsonMember, bool) {
	ms, _, err := d.members()
	if err != nil {
		return jsonMember{}, false
	}
	for _, m := range ms {
		if m.key == key {
			return m, true
		}
	}
	return jsonMember{}, false
}

func (d *jsonDoc) raw(key string) (string, bool) {
	m, ok := d.find(key)
	if !ok {
		return "", false
	}
	return string(d.data[m.valStart:m.valEnd]), true
}

// getString returns a string member; null counts as absent, as it does for
// ATLauncher (Gson).
func (d *jsonDoc) getString(key string) (string, bool, error) {
	r, ok := d.raw(key)
	if !ok || r == "null" {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal([]byte(r), &s); err != nil {
		return "", true, fmt.Errorf("%s is not a string", key)
	}
	return s, true, nil
}

func (d *jsonDoc) setRaw(key, raw string) error {
	ms, _, err := d.members()
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.key == key {
			d.splice(m.valStart, m.valEnd, raw)
			return nil
		}
	}
	k, _ := json.Marshal(key)
	member := string(k) + ": " + raw
	if len(ms) == 0 {
		// Right after the brace, so removing it leaves the object as it was.
		open, _, _ := d.object()
		d.splice(open+1, open+1, member)
		return nil
	}
	last := ms[len(ms)-1]
	// Gson writes one member a line; the new one copies the last one's indent.
	sep := ", "
	if indent, ok := lineIndent(d.data, last.start); ok {
		nl := "\n"
		if bytes.Contains(d.data, []byte("\r\n")) {
			nl = "\r\n"
		}
		sep = "," + nl + indent
	}
	d.splice(last.valEnd, last.valEnd, sep+member)
	return nil
}

func (d *jsonDoc) setString(key, v string) error { return d.setRaw(key, jsonString(v)) }

// remove deletes a member together with the separator before it, the exact
// inverse of setRaw adding it last.
func (d *jsonDoc) remove(key string) error {
	ms, _, err := d.members()
	if err != nil {
		return err
	}
	for i, m := range ms {
		if m.key != key {
			continue
		}
		switch {
		case i > 0:
			d.splice(ms[i-1].valEnd, m.valEnd, "")
		case len(ms) > 1:
			d.splice(m.start, ms[1].start, "")
		default:
			d.splice(m.start, m.valEnd, "")
		}
		return nil
	}
	return nil
}

func (d *jsonDoc) splice(from, to int, s string) {
	out := make([]byte, 0, len(d.data)+len(s))
	out = append(out, d.data[:from]...)
	out = append(out, s...)
	out = append(out, d.data[to:]...)
	d.data = out
}

// jsonString encodes like Gson without HTML escaping: only what JSON needs.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// lineIndent returns the whitespace before at, if at starts a line.
func lineIndent(data []byte, at int) (string, bool) {
	i := at
	for i > 0 && (data[i-1] == ' ' || data[i-1] == '\t') {
		i--
	}
	if i == 0 || data[i-1] != '\n' {
		return "", false
	}
	return string(data[i:at]), true
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// members lists the members of the object whose '{' is at open. The input is
// already known to be valid JSON, so the scanner only tracks structure.
func members(data []byte, open int) ([]jsonMember, int, error) {
	var ms []jsonMember
	i := skipSpace(data, open+1)
	for i < len(data) && data[i] != '}' {
		if data[i] == ',' {
			i = skipSpace(data, i+1)
			continue
		}
		start := i
		end, err := skipValue(data, i)
		if err != nil {
			return nil, 0, err
		}
		var key string
		if err := json.Unmarshal(data[start:end], &key); err != nil {
			return nil, 0, err
		}
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return nil, 0, errors.New("malformed object")
		}
		vs := skipSpace(data, i+1)
		ve, err := skipValue(data, vs)
		if err != nil {
			return nil, 0, err
		}
		ms = append(ms, jsonMember{key: key, start: start, valStart: vs, valEnd: ve})
		i = skipSpace(data, ve)
	}
	if i >= len(data) {
		return nil, 0, errors.New("unterminated object")
	}
	return ms, i, nil
}

func skipValue(data []byte, i int) (int, error) {
	if i >= len(data) {
		return 0, errors.New("unexpected end")
	}
	switch data[i] {
	case '"':
		for j := i + 1; j < len(data); j++ {
			switch data[j] {
			case '\\':
				j++
			case '"':
				return j + 1, nil
			}
		}
		return 0, errors.New("unterminated string")
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				e, err := skipValue(data, j)
				if err != nil {
					return 0, err
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errors.New("unterminated value")
	default:
		j := i
		for j < len(data) && !strings.ContainsRune(",}] \t\r\n", rune(data[j])) {
			j++
		}
		return j, nil
	}
}
