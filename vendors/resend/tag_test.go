package resend

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/vendors"
)

func TestTag(t *testing.T) {
	v := &Vendor{}
	tag := vendors.CallTag{ID: "clABC", RunLabel: "nightly-7"}
	send := func(body string) ([]byte, bool) {
		r := httptest.NewRequest("POST", "/emails", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return v.Tag(r, "/emails", []byte(body), tag)
	}
	out, ok := send(`{"from":"a@x.dev","to":"b@x.dev","subject":"hi","tags":[{"name":"keybrake_run","value":"mine"}]}`)
	var email struct {
		To   string     `json:"to"`
		Tags []emailTag `json:"tags"`
	}
	if !ok || json.Unmarshal(out, &email) != nil || email.To != "b@x.dev" {
		t.Fatalf("Tag = %s, %v", out, ok)
	}
	want := []emailTag{{"keybrake_run", "mine"}, {"keybrake_call_id", "clABC"}}
	if len(email.Tags) != 2 || email.Tags[0] != want[0] || email.Tags[1] != want[1] {
		t.Fatalf("tags = %+v; want %+v", email.Tags, want)
	}
	// A run label Resend would refuse as a tag is left out.
	tag.RunLabel = "windmill/run 7"
	out, ok = send(`{"from":"a@x.dev","to":"b@x.dev"}`)
	if !ok || strings.Contains(string(out), "keybrake_run") || !strings.Contains(string(out), "clABC") {
		t.Fatalf("Tag = %s, %v", out, ok)
	}
	if _, ok := send(`{"to":"b@x.dev","tags":"nope"}`); ok {
		t.Fatal("tagged a body whose tags are not an array")
	}
}
