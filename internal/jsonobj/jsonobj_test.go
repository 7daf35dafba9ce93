package jsonobj

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/azen-sh/gateway/internal/contract"
)

func TestParseRules(t *testing.T) {
	rows := []struct {
		rule, body, want string
	}{
		{"an empty body is refused", ``, "Request body is required: a JSON object"},
		{"an array is not an object", `[]`, "Request body must be a JSON object"},
		{"an unknown field is named", `{"nme":"x"}`, `Unknown field "nme"`},
		{"a repeated field is named", `{"name":"a","name":"b"}`, `Field "name" appears more than once`},
		{"trailing data is refused", `{"name":"a"} {}`, "Request body must contain a single JSON object and nothing after it"},
		{"a truncated body is malformed", `{"name":`, "Malformed JSON: unexpected end of body"},
		{"bad UTF-8 is refused", "{\"name\":\"\xff\"}", "Request body is not valid UTF-8"},
		{"a lone high surrogate is refused, not stored as U+FFFD", `{"name":"\ud800x"}`, `name contains an unpaired UTF-16 surrogate (\ud800), which is not Unicode text`},
		{"a lone low surrogate is refused (either case)", `{"name":"a\uDC00"}`, `name contains an unpaired UTF-16 surrogate (\udc00), which is not Unicode text`},
		{"a high surrogate at the end of a string", `{"name":"a\ud83d"}`, `name contains an unpaired UTF-16 surrogate (\ud83d), which is not Unicode text`},
		{"a high surrogate before a non-surrogate escape", `{"name":"\ud83d\u0041"}`, `name contains an unpaired UTF-16 surrogate (\ud83d), which is not Unicode text`},
		{"a low surrogate before its high half", `{"name":"\udc00\ud800"}`, `name contains an unpaired UTF-16 surrogate (\udc00), which is not Unicode text`},
		{"a lone surrogate deep in a value names the top field", `{"n":{"k":["\udfff"]}}`, `n contains an unpaired UTF-16 surrogate (\udfff), which is not Unicode text`},
	}
	for _, row := range rows {
		t.Run(row.rule, func(t *testing.T) {
			_, err := Parse([]byte(row.body), false, "name", "n")
			msg, ok := contract.PublicMessage(err)
			if !ok || msg != row.want {
				t.Fatalf("got %v, want %q", err, row.want)
			}
		})
	}
	if o, err := Parse(nil, true); err != nil || len(o) != 0 {
		t.Fatalf("empty allowed: %v %v", o, err)
	}
}

func TestParseKeepsWhatIsUnicode(t *testing.T) {
	rows := []struct {
		rule, body, want string
	}{
		{"a surrogate pair is one character", `{"name":"\ud83d\ude00!"}`, "\U0001F600!"},
		{"upper-case hex pairs too", `{"name":"\uD83D\uDE00"}`, "\U0001F600"},
		{"an escaped backslash before u is no escape", `{"name":"C:\\ud800"}`, `C:\ud800`},
		{"U+FFFD sent as an escape is kept", `{"name":"\ufffd"}`, "\ufffd"},
	}
	for _, row := range rows {
		t.Run(row.rule, func(t *testing.T) {
			o, err := Parse([]byte(row.body), false, "name")
			if err != nil {
				t.Fatal(err)
			}
			if got, _, err := o.String("name", true); err != nil || got != row.want {
				t.Fatalf("got %q %v, want %q", got, err, row.want)
			}
		})
	}
}

func TestParseIntRules(t *testing.T) {
	rows := []struct {
		rule, in string
		want     int64
		msg      string
	}{
		{"an integer in range", "7", 7, ""},
		{"a negative integer in range", "-3", -3, ""},
		{"out of range names the value", "11", 0, "n must be from -5 to 10, got 11"},
		{"empty", "", 0, "n must be an integer from -5 to 10"},
		{"a plus sign", "+1", 0, "n must be an integer from -5 to 10"},
		{"a leading zero", "01", 0, "n must be an integer from -5 to 10"},
		{"a fraction", "2.5", 0, "n must be an integer from -5 to 10"},
		{"an exponent", "1e1", 0, "n must be an integer from -5 to 10"},
		{"beyond int64", "99999999999999999999", 0, "n must be an integer from -5 to 10"},
	}
	for _, row := range rows {
		t.Run(row.rule, func(t *testing.T) {
			got, err := ParseInt("n", row.in, -5, 10)
			msg, _ := contract.PublicMessage(err)
			if got != row.want || msg != row.msg || (err != nil) != (row.msg != "") {
				t.Fatalf("ParseInt(%q) = %d, %v; want %d, %q", row.in, got, err, row.want, row.msg)
			}
		})
	}
}

func TestTypedFieldsNameTheField(t *testing.T) {
	o, err := Parse([]byte(`{"name":1,"n":"1","list":[1],"q":{"limit":"x"},"big":100,"ok":"yes","z":-0.5}`), false,
		"name", "n", "list", "q", "big", "ok", "z")
	if err != nil {
		t.Fatal(err)
	}
	check := func(err error, want string) {
		t.Helper()
		if msg, _ := contract.PublicMessage(err); msg != want {
			t.Errorf("got %v, want %q", err, want)
		}
	}
	_, _, err = o.String("name", true)
	check(err, "name must be a string")
	_, _, err = o.String("missing", true)
	check(err, "missing is required")
	_, _, err = o.Int("n", 0, 10)
	check(err, "n must be an integer from 0 to 10")
	_, _, err = o.Int("big", 0, 10)
	check(err, "big must be from 0 to 10, got 100")
	_, _, err = o.Int("z", 0, 10)
	check(err, "z must be an integer from 0 to 10")
	_, _, err = o.Strings("list")
	check(err, "list must be an array of strings")
	_, _, err = o.Object("q", "period")
	check(err, `q: Unknown field "limit"`)
	if v, ok, err := o.String("ok", true); v != "yes" || !ok || err != nil {
		t.Errorf("String = %q %v %v", v, ok, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{}`, `{"name":"a"}`, `{"q":{"limit":1}}`, `[`, `{"name":"\u00e9"}`, "{\"a\":1}\n",
		`{"name":"\ud800"}`, `{"name":"\ud83d\ude00"}`, `{"name":"\\ud800"}`, `{"q":{"limit":"\udc00\ud800"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := Parse(data, true, "name", "q")
		if err != nil {
			if _, ok := contract.PublicMessage(err); !ok {
				t.Fatalf("a non-public error: %v", err)
			}
			return
		}
		name, _, _ := o.String("name", false)
		_, _, _ = o.Object("q", "limit")
		// U+FFFD comes out only if the client sent it: an unpaired
		// surrogate is refused, never replaced.
		if strings.ContainsRune(name, utf8.RuneError) && !bytes.ContainsRune(data, utf8.RuneError) &&
			!strings.Contains(strings.ToLower(string(data)), `\ufffd`) {
			t.Fatalf("accepted %q as %q with a replacement character", data, name)
		}
	})
}
