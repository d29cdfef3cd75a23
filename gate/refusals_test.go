package gate

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/ledger"
)

// brokenBody is a request body whose reading fails part way, as a client
// that drops its connection mid-upload leaves it.
type brokenBody struct{ read bool }

func (b *brokenBody) Read(p []byte) (int, error) {
	if !b.read {
		b.read = true
		return copy(p, "amount=5"), nil
	}
	return 0, errors.New("connection reset by peer")
}

func (b *brokenBody) Close() error { return nil }

// TestGateRecordsUnreadableBody: a known key's call whose body cannot be
// read is refused 400 keybrake_body_unreadable, forwards nothing, reserves
// nothing, and is recorded like every refusal of a known key
// (docs/decisions.md).
func TestGateRecordsUnreadableBody(t *testing.T) {
	f := newGTFixture(t, "100")
	r := httptest.NewRequest("POST", "/v1/payment_intents", nil)
	r.Body = &brokenBody{}
	r.Header.Set("Authorization", "Bearer "+f.secret)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	forwarded := false
	if err := f.gate.ServeHTTP(w, r, func(http.ResponseWriter, *http.Request) error { forwarded = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if forwarded {
		t.Fatal("a call with an unreadable body was forwarded")
	}
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "keybrake_body_unreadable") {
		t.Fatalf("unreadable body: %d %s", w.Code, w.Body)
	}
	c := f.lastCall()
	if c.CallID != w.Header().Get(HeaderCallID) || c.Outcome != ledger.OutcomeBadRequest ||
		c.StatusCode != http.StatusBadRequest || c.CostState != ledger.CostNone {
		t.Fatalf("recorded call = %+v; want the refusal, bad_request, 400, no cost", c)
	}
	if u := f.usage(); u.Spent != 0 || u.Reserved != 0 {
		t.Fatalf("usage = spent %s reserved %s; want 0 and 0", u.Spent, u.Reserved)
	}
}
