package simvendor

import (
	"net/http"
	"time"
)

// idemWindow is how long Stripe and Resend keep an idempotency key: "You can
// remove keys from the system automatically after they're at least 24 hours
// old" (https://docs.stripe.com/api/idempotent_requests); "We keep
// idempotency keys in our system for 24 hours"
// (https://resend.com/docs/dashboard/emails/idempotency-keys). The
// simulator keeps each key exactly 24 hours of the injected clock.
const idemWindow = 24 * time.Hour

// idemScope names one key space: a vendor, and for Stripe the account the
// request acts on (Stripe-Account), since keys of different connected
// accounts never collide.
type idemScope struct {
	vendor, account, key string
}

// idemEntry is one key's first request and, once it finished, its saved
// response.
type idemEntry struct {
	path        string // endpoint the key was first used on
	fingerprint string // canonical parameters of the first request
	created     time.Time
	inFlight    bool
	requestID   string
	status      int
	header      http.Header
	body        []byte
}

// idemStore is the idempotency layer shared by the vendors that honour
// Idempotency-Key (Stripe, Resend; Twilio ignores the header).
type idemStore struct {
	entries map[idemScope]*idemEntry
}

func newIdemStore() *idemStore { return &idemStore{entries: map[idemScope]*idemEntry{}} }

// lookup returns the live entry for k at now, pruning an expired one.
func (st *idemStore) lookup(k idemScope, now time.Time) *idemEntry {
	e, ok := st.entries[k]
	if !ok {
		return nil
	}
	if !e.inFlight && now.Sub(e.created) >= idemWindow {
		delete(st.entries, k)
		return nil
	}
	return e
}

// begin marks k in flight for a first request.
func (st *idemStore) begin(k idemScope, path, fingerprint string, now time.Time) *idemEntry {
	e := &idemEntry{path: path, fingerprint: fingerprint, created: now, inFlight: true}
	st.entries[k] = e
	return e
}

// save keeps the response of k's first request.
func (st *idemStore) save(k idemScope, requestID string, status int, header http.Header, body []byte) {
	e := st.entries[k]
	if e == nil {
		return
	}
	e.inFlight = false
	e.requestID = requestID
	e.status = status
	e.header = header.Clone()
	e.body = append([]byte(nil), body...)
}

// drop forgets k: its first request saved nothing (it failed validation),
// so a retry executes anew.
func (st *idemStore) drop(k idemScope) { delete(st.entries, k) }
