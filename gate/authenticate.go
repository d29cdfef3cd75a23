package gate

import (
	"crypto/subtle"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/internal/authlimit"
	"github.com/keybrake/keybrake/ledger"
)

// authenticate finds the call's vault key where the vendor's SDK sends its
// credential, looks it up, and refuses a key issued for another vendor or no
// longer active. The key is looked up before the failed-auth limiter is
// asked (the lookup is cached): a valid key is never refused for what other
// clients behind the same address sent; only failing attempts are counted
// and, past the burst, refused with 429.
func (g *Gate) authenticate(r *http.Request, c *call) *refusal {
	v := g.cfg.Vendor
	secret, ok := v.Credential(r)
	if !ok {
		return missingCredential(v.Name())
	}
	c.secret = secret
	h := ledger.HashSecret(secret)
	key, err := g.cfg.Keys.Lookup(r.Context(), h)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return g.failedKey(r, c)
	case err != nil:
		g.log.Error("looking up vault key", zap.String("call_id", c.id), zap.Error(err))
		return unavailable()
	}
	// The lookup was by hash already; comparing in constant time as well
	// keeps a future index change from opening a timing side channel.
	if subtle.ConstantTimeCompare(key.Hash[:], h[:]) != 1 {
		return g.failedKey(r, c)
	}
	c.cached = key
	c.key = &c.cached.Key
	if key.Vendor != v.Name() {
		return keyStatusRefusal(ledger.OutcomeWrongVendor)
	}
	// The cached status may be stale in the active direction only for
	// the cache TTL; Reserve checks again in the ledger.
	if st := key.Status(c.started); st != ledger.StatusActive {
		return keyStatusRefusal(st)
	}
	return nil
}

// failedKey refuses a vault key that matches none: 401, or 429 once its
// address has failed more than the limiter's burst.
func (g *Gate) failedKey(r *http.Request, c *call) *refusal {
	addr := authlimit.ClientAddr(r.RemoteAddr)
	if ok, _ := g.cfg.AuthLimiter.Allow(addr, c.started); !ok {
		return authThrottled()
	}
	g.cfg.AuthLimiter.Fail(addr, c.started)
	return invalidKey()
}
