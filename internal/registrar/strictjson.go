package registrar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// scanStrict reads body as exactly one JSON value and reports what encoding/json forgives but a
// request must not have: member names that appear twice in one object (encoding/json keeps the
// last, so `"clientName":"Bad Name!","clientName":"ok"` would register "ok" while whoever reviews
// the message reads the first), and bytes after the value (a stray `}` that Decoder.More misses).
// It returns the paths of the duplicates ("secret.lifetimeDays"), or a syntax error.
func scanStrict(body []byte) (duplicates []string, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object bool
		path   string
		seen   map[string]bool
		key    string // the member whose value comes next; "" while a name is expected
		index  int    // the next element's index, in an array
	}
	var stack []*frame
	top := func() *frame {
		if len(stack) == 0 {
			return nil
		}
		return stack[len(stack)-1]
	}
	childPath := func() string {
		f := top()
		switch {
		case f == nil:
			return ""
		case f.object:
			return joinPath(f.path, f.key)
		default:
			return f.path + "[" + strconv.Itoa(f.index) + "]"
		}
	}
	// valueDone records that a whole value was read and reports whether it was the top level.
	valueDone := func() bool {
		f := top()
		if f == nil {
			return true
		}
		if f.object {
			f.key = ""
		} else {
			f.index++
		}
		return false
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if f := top(); f != nil && f.object && f.key == "" {
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
				if valueDone() {
					break
				}
				continue
			}
			name, _ := tok.(string)
			if f.seen[name] {
				duplicates = append(duplicates, joinPath(f.path, name))
			}
			f.seen[name] = true
			f.key = name
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, path: childPath(), seen: map[string]bool{}})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{path: childPath()})
			continue
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if valueDone() {
			break
		}
	}
	if rest := bytes.Trim(body[dec.InputOffset():], " \t\r\n"); len(rest) > 0 { // JSON's whitespace, not Unicode's
		return duplicates, fmt.Errorf("unexpected %q after the JSON value", clip(string(rest), 20))
	}
	return duplicates, nil
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// clip shortens s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
