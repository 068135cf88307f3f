package ingest

import (
	"reflect"
	"testing"
)

var flatCases = []struct {
	in   string
	flat bool // decodeFlat takes it itself
}{
	{`{"value":23.5,"ts":1732450000123}`, true},
	{` { "value" : -0.5e+3 , "unit":"°C" } `, false}, // non-ASCII: encoding/json's UTF-8 rules apply
	{`{"value":"running","ts":"2026-11-25T10:00:00Z"}`, true},
	{`{"a":true,"b":false,"c":null,"d":0,"e":-0,"f":1E9}`, true},
	{`{}`, true},
	{`{"value":23.5,"value":24}`, true}, // the last wins, as in encoding/json
	{`{"a":{"b":1}}`, false},
	{`{"a":[1,2]}`, false},
	{`{"a":"x\"y"}`, false},
	{`{"a":01}`, false},
	{`{"a":1.}`, false},
	{`{"a":.5}`, false},
	{`{"a":1e}`, false},
	{`{"a":+1}`, false},
	{`{"a":1,}`, false},
	{`{"a":1} x`, false},
	{`{"a":1}{}`, false},
	{`{"a" 1}`, false},
	{`{"a":tru}`, false},
	{`{"a":truex}`, false},
	{`{a:1}`, false},
	{"{\"a\":\"\x01\"}", false},
	{`{"a":1`, false},
	{`[]`, false},
	{`{"a":1e999}`, true}, // kept as text: the parser explains why it is no number
}

func TestDecodeFlatAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range flatCases {
		got, ok := decodeFlat([]byte(c.in))
		if ok != c.flat {
			t.Errorf("decodeFlat(%s): ok = %v, want %v", c.in, ok, c.flat)
		}
		checkFlat(t, []byte(c.in))
		_ = got
	}
}

// checkFlat fails when decodeFlat takes an input and gives anything but what
// encoding/json gives for it.
func checkFlat(t *testing.T, in []byte) {
	t.Helper()
	got, ok := decodeFlat(in)
	if !ok {
		return
	}
	want, err := decodeJSON(in)
	if err != nil {
		t.Fatalf("decodeFlat took %q, which encoding/json refuses: %v", in, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeFlat(%q) = %#v, encoding/json gives %#v", in, got, want)
	}
}

func FuzzDecodeFlat(f *testing.F) {
	for _, c := range flatCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkFlat(t, in) })
}

func BenchmarkDecodeObject(b *testing.B) {
	in := []byte(`{"value":23.5,"ts":1732450000123}`)
	b.Run("flat", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeObject(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeJSON(in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
