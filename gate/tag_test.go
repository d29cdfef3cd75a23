package gate

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// TestGateTagsTheCreate: the vendor gets the call's tag in its body with a
// right Content-Length, while pricing and the idempotent replay still go by
// the client's own body.
func TestGateTagsTheCreate(t *testing.T) {
	f := newGTFixture(t, "100")
	var seen []url.Values
	next := func(w http.ResponseWriter, r *http.Request) error {
		b, _ := io.ReadAll(r.Body)
		if r.ContentLength != int64(len(b)) {
			t.Errorf("Content-Length %d for a body of %d", r.ContentLength, len(b))
		}
		q, _ := url.ParseQuery(string(b))
		seen = append(seen, q)
		return answer(200, `{"id":"pi_tagged","object":"payment_intent","amount":500,"currency":"usd"}`)(w, r)
	}
	f.charge(next, "")
	first := f.lastCall()
	if got := seen[0].Get("metadata[keybrake_call_id]"); got != first.Tag || !strings.HasPrefix(got, "kt") || got == first.CallID {
		t.Fatalf("keybrake_call_id = %q; want the call's recorded random tag %q, not its id %s", got, first.Tag, first.CallID)
	}
	if seen[0].Get("metadata[keybrake_run]") != "gate-test" || seen[0].Get("amount") != "500" {
		t.Fatalf("forwarded form = %v", seen[0])
	}
	// An idempotent request and its replay carry one tag, so the vendor
	// sees the same parameters; the replay is free.
	f.charge(next, "idem-tag")
	f.charge(next, "idem-tag")
	if a, b := seen[1].Get("metadata[keybrake_call_id]"), seen[2].Get("metadata[keybrake_call_id]"); a == "" || a != b || a == first.Tag {
		t.Fatalf("idempotent attempts tagged %q and %q", a, b)
	}
	if c := f.lastCall(); c.Outcome != ledger.OutcomeIdempotentReplay || c.Tag != seen[1].Get("metadata[keybrake_call_id]") {
		t.Fatalf("second idempotent call = %+v; want a replay", c)
	}
	if u := f.usage(); u.Spent != 10*money.PerDollar {
		t.Fatalf("spent = %s; want $10 (the replay free)", u.Spent)
	}
}
