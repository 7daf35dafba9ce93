package jsonobj

import (
	"testing"

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
	for _, s := range []string{`{}`, `{"name":"a"}`, `{"q":{"limit":1}}`, `[`, `{"name":"\u00e9"}`, "{\"a\":1}\n"} {
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
		_, _, _ = o.String("name", false)
		_, _, _ = o.Object("q", "limit")
	})
}
