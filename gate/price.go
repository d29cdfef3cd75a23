package gate

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// price decides what the call may cost: priced from the request, free for
// a reason the vendor documents, or refused (the vendor refused it, or its
// cost is unknown and the unknown_cost policy is deny).
func (g *Gate) price(r *http.Request, c *call, body []byte) *refusal {
	est, err := g.cfg.Vendor.Estimate(r, body)
	if err != nil {
		f := &refusal{status: http.StatusBadRequest, code: "keybrake_bad_request", message: err.Error(),
			outcome: ledger.OutcomeBadRequest, record: true}
		var ve *vendors.Error
		if errors.As(err, &ve) {
			f.status, f.code, f.message, f.errType = ve.Status, ve.Code, ve.Message, ve.Type
			if ve.Outcome != "" {
				f.outcome = ve.Outcome
			}
		}
		return f
	}
	if est.Object != "" {
		// What the key has already counted for this object: only what it
		// reserved or paid through Keybrake, never a free call that saw it.
		counted, err := g.cfg.Store.ObjectExposure(r.Context(), c.key.ID, g.cfg.Vendor.Name(), est.Object)
		if err != nil {
			g.log.Error("summing object exposure", zap.String("call_id", c.id), zap.Error(err))
			return unavailable()
		}
		est.Counted = counted
		est.Cost = max(est.Exposure-counted, 0)
	}
	if !est.Known {
		if !g.cfg.UnknownCost.Reserve {
			msg := "Keybrake cannot tell what this call will cost, and this vendor's unknown_cost policy is deny."
			if est.Reason != "" {
				msg = "Keybrake cannot tell what this call will cost (" + est.Reason + "), and this vendor's unknown_cost policy is deny."
			}
			return &refusal{status: http.StatusForbidden, code: "keybrake_unknown_cost", message: msg,
				outcome: ledger.OutcomeUnknownCost, record: true}
		}
		est.Cost, est.Known = g.cfg.UnknownCost.Amount, true
	}
	if est.Minimum >= est.Cost || est.Fit == nil {
		est.Minimum = 0
	}
	c.estimate = est
	return nil
}

// fit bounds the request to what the ledger reserved (a Twilio call's
// TimeLimit, a declared rule's max_tokens), whether that is the whole
// estimate or less: every reservation bounds the call's cost.
func (g *Gate) fit(r *http.Request, c *call, reserved money.Micros) *refusal {
	if c.estimate.Fit == nil {
		return nil
	}
	body, err := c.estimate.Fit(reserved)
	if err != nil {
		f := &refusal{status: http.StatusBadRequest, code: "keybrake_bad_request", message: err.Error(),
			outcome: ledger.OutcomeBadRequest}
		var ve *vendors.Error
		if errors.As(err, &ve) {
			f.status, f.code, f.message, f.capHit = ve.Status, ve.Code, ve.Message, ve.CapHit
			if ve.CapHit {
				f.outcome = ledger.OutcomeCapHit
			}
		}
		return f
	}
	c.estimate.Cost = reserved
	setBody(r, body)
	return nil
}

// misplacedKey refuses a request that carries the vault key anywhere but
// where the vendor's SDK puts its credential: in the query string (it would
// reach the vendor and its logs) or in the body (a metadata field the
// vendor would store). The path is checked once the vendor has rewritten it
// (keyInPath): twilio-go puts its username, which may be the vault key, in
// the path as the account SID, and the Twilio vendor replaces it. Headers
// that carry it are dropped when the call is forwarded (dropKeyHeaders).
func misplacedKey(r *http.Request, secret string, body []byte) *refusal {
	if secret == "" {
		return nil
	}
	unescaped, _ := url.QueryUnescape(r.URL.RawQuery)
	if strings.Contains(r.URL.RawQuery, secret) || strings.Contains(unescaped, secret) {
		return keyInURL()
	}
	if bytes.Contains(body, []byte(secret)) {
		return &refusal{status: http.StatusBadRequest, code: "keybrake_key_in_body",
			message: "The vault key must not appear in the request body.", outcome: ledger.OutcomeBadRequest, record: true}
	}
	return nil
}

// keyInPath reports whether the vault key is still in the path the vendor
// will see, once Authorize has rewritten it.
func keyInPath(r *http.Request, secret string) bool {
	return secret != "" && (strings.Contains(r.URL.Path, secret) || strings.Contains(r.URL.RawPath, secret) ||
		strings.Contains(r.RequestURI, secret))
}

func keyInURL() *refusal {
	return &refusal{status: http.StatusBadRequest, code: "keybrake_key_in_url",
		message: "The vault key must not appear in the URL.", outcome: ledger.OutcomeBadRequest, record: true}
}

// dropKeyHeaders removes every header still carrying the vault key once
// the vendor has put the real secret in: the vault key never reaches the
// vendor.
func dropKeyHeaders(r *http.Request, secret string) {
	for _, h := range []http.Header{r.Header, r.Trailer} {
		for name, vals := range h {
			for _, v := range vals {
				if strings.Contains(v, secret) {
					h.Del(name)
					break
				}
			}
		}
	}
}

// setBody replaces the body forwarded upstream.
func setBody(r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Del("Transfer-Encoding")
	r.TransferEncoding = nil
}
