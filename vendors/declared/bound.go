package declared

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// Every reservation bounds the call's cost (DESIGN, "The money model"). A
// rule that settles from the vendor's answer (an LLM's usage) could settle
// above what was reserved, so it must name the request field the vendor
// takes as the most the call may use (max_tokens): its bound term.
// Keybrake writes that field into the forwarded body, the rule's default
// when the request has none, lowered to what the reservation covers when
// the key's headroom is smaller (as with Twilio's TimeLimit). A rule whose
// cost has no bound is a configuration error. And whatever the answer
// says, a call never settles above its reservation (Settle).

// checkBound checks a term marked bound.
func checkBound(t Term) error {
	if t.Field == "" {
		return fmt.Errorf("bound is only for a field term (the request field the vendor takes as a limit, e.g. max_tokens)")
	}
	if t.Default == "" {
		return fmt.Errorf("a bound field needs a default: Keybrake writes it when the request has none")
	}
	for _, alt := range strings.Split(t.Field, "|") {
		for _, seg := range strings.Split(alt, ".") {
			if seg == "*" || isIndex(seg) {
				return fmt.Errorf("bound field %q: Keybrake writes a bound only at object keys, not at %q", t.Field, seg)
			}
		}
	}
	return nil
}

func isIndex(seg string) bool {
	_, err := strconv.Atoi(seg)
	return err == nil
}

// checkBounded refuses an endpoint whose cost could settle above its
// reservation without a bound, and one with two bounds.
func (e *endpoint) checkBounded() error {
	n := 0
	for i := range e.estimate {
		if e.estimate[i].bound {
			n++
			e.boundAt = i
		}
	}
	switch {
	case n > 1:
		return fmt.Errorf("%d estimate terms are marked bound; a rule has one", n)
	case n == 0 && len(e.settle) > 0:
		return fmt.Errorf("settle terms read the cost from the vendor's answer, which nothing in the request bounds: " +
			"mark the estimate field the vendor takes as a limit (an LLM's max_tokens) with bound, or settle at the estimate (no settle terms)")
	case n == 0:
		e.boundAt = -1
	}
	return nil
}

// requestFields are the request fields an endpoint's estimate reads:
// every alternative of every term's path and times, whole (a form key) and
// by its first segment (a JSON key or a query parameter). singles are
// those of them that hold one number (field terms and times), which a form
// must not give twice; a count term counts a form key's values.
func (e *endpoint) requestFields() (all, singles []string) {
	seen := map[string]bool{}
	add := func(path string, single bool) {
		for _, alt := range strings.Split(path, "|") {
			if alt == "" {
				continue
			}
			if single {
				singles = append(singles, alt)
			}
			first, _, _ := strings.Cut(alt, ".")
			for _, f := range []string{alt, first} {
				if !seen[f] {
					seen[f] = true
					all = append(all, f)
				}
			}
		}
	}
	for _, t := range e.estimate {
		add(t.path, t.kind == kindField)
		add(t.times, true)
	}
	return all, singles
}

// readRequest reads the request one way only: none of the fields the
// estimate reads in the query string, the body parsed by its Content-Type
// with no key given twice, and no path with two alternatives given (the
// vendor could read the other one).
func (e *endpoint) readRequest(r *http.Request, raw []byte) (*body, *vendors.Error) {
	if bad := vendors.CheckQuery(r, e.fields); bad != nil {
		return nil, bad
	}
	b, bad := parseBody(vendors.MediaType(r), raw, e.singles)
	if bad != nil {
		return nil, bad
	}
	for _, t := range e.estimate {
		for _, p := range []string{t.path, t.times} {
			if p != "" && strings.Contains(p, "|") && b.named(p) > 1 {
				return nil, vendors.Ambiguous("The request gives more than one of " + strings.ReplaceAll(p, "|", ", ") + "; the vendor would read only one of them.")
			}
		}
	}
	return b, nil
}

// bound sets the Minimum and Fit of an estimate whose endpoint has a bound
// term: the least the call may reserve is one unit of the bound, and Fit
// writes the bound the reservation covers into the body.
func (e *endpoint) bound(est *vendors.Estimate, b *body, raw []byte) *vendors.Error {
	t := e.estimate[e.boundAt]
	asked := new(big.Rat).Set(t.def)
	present := ""
	if vals := b.lookup(t.path); len(vals) > 0 {
		s, _ := scalarString(vals[0]) // a number: cost() has read it
		asked, _ = money.ParseDecimal(s)
		present = presentAlt(b, t.path)
	}
	perUnit := t.price.rat()
	if t.times != "" {
		if tv := b.lookup(t.times); len(tv) > 0 {
			s, _ := scalarString(tv[0])
			n, _ := money.ParseDecimal(s)
			perUnit.Mul(perUnit, n)
		}
	}
	boundCost, _ := t.cost(b)
	other := est.Cost - boundCost
	one, err := money.CeilMicros(perUnit)
	if err != nil {
		return vendors.Ambiguous("Keybrake cannot bound this request's cost.")
	}
	est.Minimum = other + one
	est.Fit = func(reserved money.Micros) ([]byte, error) {
		limit := affordable(reserved-other, perUnit, asked)
		if limit.Sign() <= 0 {
			return nil, &vendors.Error{Status: http.StatusTooManyRequests, Code: "keybrake_cap_hit", CapHit: true,
				Message: "This vault key's cap does not cover one unit of " + t.path + " for this call."}
		}
		if present != "" && asked.Cmp(new(big.Rat).SetInt(limit)) <= 0 {
			return raw, nil // already bound within the reservation
		}
		field := present
		if field == "" {
			field, _, _ = strings.Cut(t.path, "|")
		}
		return writeBound(b, raw, field, limit.String())
	}
	return nil
}

// affordable is the most units of the bound that avail micro-dollars buy
// at perUnit dollars each, never more than asked (rounded down).
func affordable(avail money.Micros, perUnit, asked *big.Rat) *big.Int {
	most := new(big.Int).Quo(asked.Num(), asked.Denom())
	if avail < 0 {
		return big.NewInt(0)
	}
	if perUnit.Sign() == 0 {
		return most
	}
	units := new(big.Rat).Quo(big.NewRat(int64(avail), int64(money.PerDollar)), perUnit)
	n := new(big.Int).Quo(units.Num(), units.Denom())
	if n.Cmp(most) > 0 {
		return most
	}
	return n
}

// presentAlt is the alternative of path the request gives.
func presentAlt(b *body, path string) string {
	for _, alt := range strings.Split(path, "|") {
		if len(b.lookup(alt)) > 0 {
			return alt
		}
	}
	return ""
}

// writeBound returns the body with field set to value: in a form every
// other parameter is kept byte for byte; a JSON body is written again
// (keys in order, numbers as sent, no HTML escaping).
func writeBound(b *body, raw []byte, field, value string) ([]byte, error) {
	if b.isForm {
		var out bytes.Buffer
		for _, pair := range bytes.Split(raw, []byte("&")) {
			k, _, _ := bytes.Cut(pair, []byte("="))
			if name, err := url.QueryUnescape(string(k)); len(pair) == 0 || err != nil || name == field {
				continue
			}
			out.Write(pair)
			out.WriteByte('&')
		}
		out.WriteString(url.QueryEscape(field) + "=" + value)
		return out.Bytes(), nil
	}
	if !b.isJSON {
		return nil, vendors.Ambiguous("Keybrake bounds this call's cost with " + field + ": send the request's body as JSON or a form.")
	}
	root := b.json
	obj, ok := root.(map[string]any)
	if !ok {
		return nil, vendors.Ambiguous("Keybrake bounds this call's cost with " + field + ", which needs the body to be a JSON object.")
	}
	segs := strings.Split(field, ".")
	for _, seg := range segs[:len(segs)-1] {
		child, ok := obj[seg]
		if !ok || child == nil {
			child = map[string]any{}
			obj[seg] = child
		}
		if obj, ok = child.(map[string]any); !ok {
			return nil, vendors.Ambiguous("Keybrake bounds this call's cost with " + field + ", but " + seg + " is not an object.")
		}
	}
	obj[segs[len(segs)-1]] = json.Number(value)
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("writing the bound: %w", err)
	}
	return bytes.TrimRight(out.Bytes(), "\n"), nil
}
