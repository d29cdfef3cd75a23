package declared

import (
	"bytes"
	"fmt"
	"math/big"
	"net/http"
	"strings"

	"github.com/keybrake/keybrake/internal/text"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// Vendor is a paid API declared in configuration.
type Vendor struct {
	c *compiled
}

// New checks cfg and returns its Vendor.
func New(cfg Config) (*Vendor, error) {
	c, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	return &Vendor{c: c}, nil
}

// Config returns the vendor's configuration, defaults applied.
func (v *Vendor) Config() Config { return v.c.cfg }

// Name implements vendors.Vendor.
func (v *Vendor) Name() string { return v.c.cfg.Name }

// Credential implements vendors.Vendor.
func (v *Vendor) Credential(r *http.Request) (string, bool) {
	return v.c.cfg.Credential.Extract(r)
}

// Authorize implements vendors.Vendor: the real secret replaces the vault
// key, and nothing else on the request may still carry it.
func (v *Vendor) Authorize(r *http.Request) error {
	return vendors.SwapCredential(r, v.c.cfg.Credential, v.c.cfg.Inject)
}

// Estimate implements vendors.Vendor.
func (v *Vendor) Estimate(r *http.Request, raw []byte) (vendors.Estimate, error) {
	ep := v.c.find(r.Method, r.URL.Path)
	if ep == nil {
		if v.c.free[r.Method] {
			return vendors.Estimate{Known: true}, nil
		}
		return vendors.Estimate{Reason: fmt.Sprintf("no cost rule for %s %s", r.Method, text.Truncate(r.URL.Path, 200))}, nil
	}
	if len(ep.estimate) == 0 {
		return vendors.Estimate{Known: true}, nil
	}
	b, bad := ep.readRequest(r, raw)
	if bad != nil {
		return vendors.Estimate{}, bad
	}
	cost, reason := sumTerms(ep.estimate, b)
	if reason != "" {
		if ep.boundAt >= 0 {
			// Priced by the unknown_cost policy, the call would go out
			// with no bound on what its answer may cost.
			return vendors.Estimate{}, vendors.Ambiguous("Keybrake cannot bound this call's cost: " + reason + ".")
		}
		return vendors.Estimate{Reason: reason}, nil
	}
	est := vendors.Estimate{Cost: cost, Known: true}
	if ep.boundAt >= 0 {
		if bad := ep.bound(&est, b, raw); bad != nil {
			return vendors.Estimate{}, bad
		}
	}
	return est, nil
}

// Settle implements vendors.Vendor. A 2xx settles at the cost the
// endpoint's settle terms read from the response (or at the estimate when
// it has none), never above the reservation; when they cannot be read the
// estimate is kept as a provisional cost. A 4xx releases; anything else is ambiguous.
func (v *Vendor) Settle(r *http.Request, status int, _ http.Header, raw []byte, est vendors.Estimate) vendors.Result {
	dec := vendors.StatusDecision(status)
	if dec != vendors.DecisionSettle {
		return vendors.Result{Decision: dec}
	}
	res := vendors.Result{Decision: vendors.DecisionSettle, Cost: est.Cost}
	ep := v.c.find(r.Method, r.URL.Path)
	if ep == nil {
		return res
	}
	var b *body
	if ep.txnPath != "" || len(ep.settle) > 0 {
		b = parseResponse(raw)
	}
	if ep.txnPath != "" && b != nil {
		res.TxnID = TxnID(b.lookup(ep.txnPath))
	}
	if len(ep.settle) == 0 {
		if !est.Known {
			res.Decision = vendors.DecisionUnpriced
		}
		return res
	}
	if b == nil {
		res.Decision = vendors.DecisionUnpriced
		return res
	}
	cost, reason := sumTerms(ep.settle, b)
	if reason != "" {
		res.Decision = vendors.DecisionUnpriced
		return res
	}
	// Never above the reservation, whatever the answer says (bound.go):
	// the key's count must not pass its cap on the vendor's word.
	res.Cost = min(cost, est.Cost)
	return res
}

// WriteError implements vendors.Vendor.
func (v *Vendor) WriteError(w http.ResponseWriter, e *vendors.Error) {
	vendors.WriteError(v.c.cfg.ErrorFormat, w, e)
}

// parseResponse decodes a JSON response body, or returns nil.
func parseResponse(raw []byte) *body {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || (raw[0] != '{' && raw[0] != '[') {
		return nil
	}
	j, err := decodeJSON(raw)
	if err != nil {
		return nil
	}
	return &body{json: j, isJSON: true}
}

// TxnID joins the scalar values found at a transaction id path with ",".
func TxnID(vals []any) string {
	var ids []string
	for _, v := range vals {
		if s, ok := scalarString(v); ok && s != "" {
			ids = append(ids, s)
		}
	}
	return strings.Join(ids, ",")
}

// sumTerms adds up the terms' costs. reason is set when one of them cannot
// be computed.
func sumTerms(terms []term, b *body) (money.Micros, string) {
	var total money.Micros
	for _, t := range terms {
		c, reason := t.cost(b)
		if reason != "" {
			return 0, reason
		}
		total += c
		if total > money.MaxUSD*money.PerDollar {
			return 0, "the cost is too large"
		}
	}
	return total, ""
}

// cost computes one term against a body.
func (t term) cost(b *body) (money.Micros, string) {
	if t.kind == kindFlat {
		return t.price.Micros(), ""
	}
	qty := new(big.Rat)
	vals := b.lookup(t.path)
	switch t.kind {
	case kindField:
		if len(vals) == 0 {
			if t.def == nil {
				return 0, fmt.Sprintf("field %q is missing and has no default", t.path)
			}
			qty.Set(t.def)
		}
		for _, v := range vals {
			s, ok := scalarString(v)
			if !ok {
				return 0, fmt.Sprintf("field %q is not a number", t.path)
			}
			q, err := money.ParseDecimal(s)
			if err != nil {
				return 0, fmt.Sprintf("field %q: %v", t.path, err)
			}
			qty.Add(qty, q)
		}
	case kindCount:
		var n int64
		for _, v := range vals {
			n += countOf(v)
		}
		qty.SetInt64(n)
	case kindChars:
		var n int64
		for _, v := range vals {
			n += charsOf(v)
		}
		qty.SetInt64((n + t.cpu - 1) / t.cpu)
	}
	if t.times != "" {
		if tv := b.lookup(t.times); len(tv) > 0 {
			times := new(big.Rat)
			for _, v := range tv {
				s, ok := scalarString(v)
				if !ok {
					return 0, fmt.Sprintf("field %q is not a number", t.times)
				}
				q, err := money.ParseDecimal(s)
				if err != nil {
					return 0, fmt.Sprintf("field %q: %v", t.times, err)
				}
				times.Add(times, q)
			}
			qty.Mul(qty, times)
		}
	}
	c, err := t.price.Cost(qty)
	if err != nil {
		return 0, fmt.Sprintf("%s: %v", t.path, err)
	}
	return c, ""
}

// Interface guard.
var _ vendors.Vendor = (*Vendor)(nil)
