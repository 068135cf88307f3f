package ingest

import "encoding/json"

// decodeFlat decodes the JSON objects devices send most: one level of keys
// whose values are numbers, plain strings, true, false or null, in ASCII
// without escapes, such as {"value":23.5,"ts":1732450000123}. It gives the
// same map encoding/json with UseNumber gives (numbers as json.Number), at a
// fraction of the cost, which matters at a hundred thousand messages a
// second. ok is false for anything else (nesting, arrays, escapes, non-ASCII,
// anything malformed), and the caller then asks encoding/json, which decides
// and explains; so this never accepts what encoding/json would refuse.
func decodeFlat(b []byte) (obj map[string]any, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	obj = make(map[string]any, 4)
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return obj, skipSpace(b, i+1) == len(b)
	}
	for {
		key, next, ok := flatString(b, i)
		if !ok {
			return nil, false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return nil, false
		}
		var v any
		switch c := b[i]; {
		case c == '"':
			s, next, ok := flatString(b, i)
			if !ok {
				return nil, false
			}
			v, i = s, next
		case c == '-' || (c >= '0' && c <= '9'):
			end, ok := flatNumber(b, i)
			if !ok {
				return nil, false
			}
			v, i = json.Number(b[i:end]), end
		case hasWord(b, i, "true"):
			v, i = true, i+4
		case hasWord(b, i, "false"):
			v, i = false, i+5
		case hasWord(b, i, "null"):
			v, i = nil, i+4
		default:
			return nil, false
		}
		obj[key] = v
		i = skipSpace(b, i)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return obj, skipSpace(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func hasWord(b []byte, i int, w string) bool {
	return len(b)-i >= len(w) && string(b[i:i+len(w)]) == w
}

// flatString reads a string at b[i] == '"' of printable ASCII without
// escapes, and returns it and the index after its closing quote.
func flatString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[i+1 : j]), j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", 0, false
		}
	}
	return "", 0, false
}

// flatNumber checks JSON's number grammar, -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?,
// from b[i] and returns the index after the number.
func flatNumber(b []byte, i int) (int, bool) {
	digits := func(i int) int {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}
