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
	send := func(body string) ([]byte, error) {
		r := httptest.NewRequest("POST", "/emails", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return v.Tag(r, "/emails", []byte(body), tag)
	}
	if out, err := send(`{"from":"a@x.dev","to":"b@x.dev","subject":"hi","tags":[{"name":"keybrake_run","value":"mine"}]}`); err == nil {
		t.Fatalf("a client's keybrake_ tag was forwarded: %s", out)
	}
	if out, err := send(`{"from":"a@x.dev","to":"b@x.dev","tags":[{"name":"Keybrake_Call_Id","value":"clOther"}]}`); err == nil {
		t.Fatalf("a forged call id was forwarded: %s", out)
	}
	out, err := send(`{"from":"a@x.dev","to":"b@x.dev","subject":"hi","tags":[{"name":"order","value":"42"}]}`)
	var email struct {
		To   string     `json:"to"`
		Tags []emailTag `json:"tags"`
	}
	if err != nil || json.Unmarshal(out, &email) != nil || email.To != "b@x.dev" {
		t.Fatalf("Tag = %s, %v", out, err)
	}
	want := []emailTag{{"order", "42"}, {"keybrake_call_id", "clABC"}, {"keybrake_run", "nightly-7"}}
	if len(email.Tags) != 3 || email.Tags[0] != want[0] || email.Tags[1] != want[1] || email.Tags[2] != want[2] {
		t.Fatalf("tags = %+v; want %+v", email.Tags, want)
	}
	// A run label Resend would refuse as a tag is left out.
	tag.RunLabel = "windmill/run 7"
	out, err = send(`{"from":"a@x.dev","to":"b@x.dev"}`)
	if err != nil || strings.Contains(string(out), "keybrake_run") || !strings.Contains(string(out), "clABC") {
		t.Fatalf("Tag = %s, %v", out, err)
	}
	if out, err := send(`{"to":"b@x.dev","tags":"nope"}`); err == nil {
		t.Fatalf("forwarded untagged a body whose tags are not an array: %s", out)
	}
}
