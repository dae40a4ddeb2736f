package funchost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// stripJSONC removes // and /* */ comments and trailing commas outside
// strings. The host reads host.json and function.json with Json.NET, which
// accepts both, so a file the real host runs must not be refused here.
func stripJSONC(src []byte) ([]byte, error) {
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf")) // UTF-8 BOM, as editors on Windows write it
	out := make([]byte, 0, len(src))
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '"':
			j := i + 1
			for ; j < len(src); j++ {
				if src[j] == '\\' {
					j++
					continue
				}
				if src[j] == '"' {
					break
				}
			}
			if j >= len(src) {
				return nil, fmt.Errorf("unterminated string")
			}
			out = append(out, src[i:j+1]...)
			i = j
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			if i < len(src) {
				out = append(out, '\n')
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := bytes.Index(src[i+2:], []byte("*/"))
			if end < 0 {
				return nil, fmt.Errorf("unterminated /* comment")
			}
			out = append(out, ' ')
			i += 2 + end + 1
		case c == '}' || c == ']':
			// Drop a trailing comma: the last non-space byte written.
			k := len(out) - 1
			for k >= 0 && isSpace(out[k]) {
				k--
			}
			if k >= 0 && out[k] == ',' {
				out = append(out[:k], out[k+1:]...)
			}
			out = append(out, c)
		default:
			out = append(out, c)
		}
	}
	return out, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// decodeJSONC decodes a JSON-with-comments document into v, naming the line
// of a syntax error.
func decodeJSONC(src []byte, v any) error {
	clean, err := stripJSONC(src)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(clean, v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return fmt.Errorf("line %d: %w", lineOf(clean, syn.Offset), err)
		case errors.As(err, &typ):
			if typ.Field != "" {
				return fmt.Errorf("%s: must be %s, got %s", typ.Field, typeName(typ.Type.Kind().String()), typ.Value)
			}
			return fmt.Errorf("must be %s, got %s", typeName(typ.Type.Kind().String()), typ.Value)
		}
		return err
	}
	return nil
}

func typeName(kind string) string {
	switch kind {
	case "int", "int64", "int32":
		return "a whole number"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return kind
}

func lineOf(b []byte, off int64) int {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	return bytes.Count(b[:off], []byte("\n")) + 1
}
