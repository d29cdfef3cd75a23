package declared

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestSubjects: a declared vendor reads the subjects it declares from the
// request body; a bad subject name is refused when the vendor is built.
func TestSubjects(t *testing.T) {
	cfg := Config{Name: "llm", Endpoints: []Endpoint{{Match: "POST /v1/chat", Estimate: []Term{{FlatUSD: "0.01"}}}},
		Subjects: map[string]string{"model": "model", "user": "messages.*.name"}}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"model":"gpt-x","messages":[{"name":"ann"},{"name":"bob"}]}`
	r := httptest.NewRequest("POST", "/v1/chat", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	est, err := v.Estimate(r, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(est.Subjects["model"], []string{"gpt-x"}) || !slices.Equal(est.Subjects["user"], []string{"ann", "bob"}) {
		t.Errorf("subjects %v", est.Subjects)
	}
	if !slices.Equal(v.SubjectNames(), []string{"model", "user"}) {
		t.Errorf("SubjectNames %v", v.SubjectNames())
	}
	cfg.Subjects = map[string]string{"Model": "model"}
	if _, err := New(cfg); err == nil {
		t.Error("a subject name in upper case was accepted")
	}
}
