package jsontext

import (
	"encoding/json"
	"testing"
)

// TestUnquoteMatchesEncodingJSON holds the unescaper to encoding/json on the cases where
// they could part ways: escapes, surrogate pairs, lone surrogates and invalid UTF-8.
func TestUnquoteMatchesEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`plain`, `tab\there`, `q\"uote\\ slash\/`, `\b\f\n\r\t`, `caf\u00e9`, `\u00E9\u4e2d`,
		`emoji \ud83d\ude00`, `lone \ud83d x`, `lone low \ude00`, `high then text \ud83dabc`,
		`two highs \ud83d\ud83d`, "bad utf8 \xff\xfe", "mixed \xc3\xa9 \\n",
	} {
		var want string
		if err := json.Unmarshal([]byte(`"`+in+`"`), &want); err != nil {
			t.Fatalf("%q: encoding/json: %v", in, err)
		}
		got, ok := Unquote([]byte(in))
		if !ok || got != want {
			t.Errorf("Unquote(%q) = %q, %v; encoding/json reads %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{`trailing\`, `\x`, `\u12`, `\u12g4`, "ctl\x01", `quote"`} {
		if got, ok := Unquote([]byte(bad)); ok {
			t.Errorf("Unquote(%q) = %q, want failure", bad, got)
		}
	}
}

// FuzzUnquote holds Unquote to encoding/json on any string body: the same text when
// encoding/json reads it, a failure when it does not.
func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`plain`, `tab\there`, `caf\u00e9 \ud83d\ude00`, "bad \xff", `a\"b`, `x\`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var want string
		err := json.Unmarshal([]byte(`"`+string(in)+`"`), &want)
		got, ok := Unquote(in)
		if (err == nil) != ok || ok && got != want {
			t.Errorf("Unquote(%q) = %q, %v; encoding/json reads %q, %v", in, got, ok, want, err)
		}
	})
}
