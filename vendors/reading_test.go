package vendors

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

func TestCheckMethodOverride(t *testing.T) {
	for _, h := range append(MethodOverrideHeaders, "x-http-method-override") {
		r := httptest.NewRequest(http.MethodGet, "/v1/x", nil)
		r.Header.Set(h, "POST")
		if e := CheckMethodOverride(r); e == nil || e.Status != 400 || e.Code != CodeAmbiguousRequest {
			t.Errorf("%s: %v", h, e)
		}
	}
	if e := CheckMethodOverride(httptest.NewRequest(http.MethodGet, "/v1/x", nil)); e != nil {
		t.Fatal(e)
	}
}

func TestCheckQuery(t *testing.T) {
	fields := []string{"max_tokens", "to"}
	for target, refused := range map[string]bool{
		"/x?max_tokens=1":     true,
		"/x?MAX_TOKENS=1":     true,
		"/x?to[0]=a":          true,
		"/x?max_tokens.a=1":   true,
		"/x?api-version=2024": false,
		"/x?tokens=1":         false,
		"/x":                  false,
	} {
		if e := CheckQuery(httptest.NewRequest(http.MethodPost, target, nil), fields); (e != nil) != refused {
			t.Errorf("%s: %v; want refused %v", target, e, refused)
		}
	}
}

func TestReadForm(t *testing.T) {
	fields := []string{"amount"}
	for body, refused := range map[string]bool{
		"amount=1&amount=900":        true,
		"amount=1&Amount=900":        true,
		`{"amount":900}`:             true,
		`[1,2]`:                      true,
		"amount=1&to=a&to=b":         false,
		"amount=1&currency=usd":      false,
		"%7B%22amount%22%3A900%7D=x": false,
	} {
		if _, e := ReadForm([]byte(body), fields); (e != nil) != refused {
			t.Errorf("%s: %v; want refused %v", body, e, refused)
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	for body, ok := range map[string]bool{
		`{"a":1,"b":{"c":2}}`:              true,
		`{"a":1,"a":2}`:                    false,
		`{"a":{"b":1,"b":2}}`:              false,
		`[{"to":"x"},{"to":"y","to":"z"}]`: false,
		`{"a":1} {"a":2}`:                  false,
		`{"a":`:                            false,
	} {
		if _, err := DecodeJSON([]byte(body)); (err == nil) != ok {
			t.Errorf("%s: %v; want ok %v", body, err, ok)
		}
	}
}

// FuzzDecodeJSON: whatever body a client sends, DecodeJSON accepts only
// valid JSON with no key given twice in an object, so the value it returns
// is the one any parser reads, first key or last.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":1,"a":2}`, `[{"to":"x"},{"to":"y","cc":[1,{"b":2,"b":3}]}]`, `{"a":{"b":1}} `, `{"a":"\u0061","\u0061":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := DecodeJSON(raw)
		if err != nil {
			return
		}
		if !json.Valid(raw) {
			t.Fatalf("accepted invalid JSON %q", raw)
		}
		var first any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&first); err != nil || !reflect.DeepEqual(first, v) {
			t.Fatalf("%q read as %v and %v", raw, v, first)
		}
	})
}
