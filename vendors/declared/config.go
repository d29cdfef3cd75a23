package declared

import (
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/keybrake/keybrake/allowlist"
	"github.com/keybrake/keybrake/vendors"
)

// Config declares a paid HTTP API: where its clients put their credential,
// how the real one goes upstream, what each endpoint costs, and how its
// errors look. It is the JSON form of a Caddyfile `vendor NAME { … }` block.
type Config struct {
	// Name is the vendor's name in keys and routes: lower-case letters,
	// digits, "_" and "-", starting with a letter, at most 32 characters.
	// Required.
	Name string `json:"name"`
	// Upstream is the vendor's base URL (e.g. "https://api.openai.com").
	// Informational here (the route's reverse_proxy sends the traffic);
	// when set it must be an absolute http or https URL. Default empty.
	Upstream string `json:"upstream,omitempty"`
	// Credential says where clients put their credential (the vault key).
	// Default {"from":"bearer"}.
	Credential vendors.CredentialConfig `json:"credential"`
	// Inject says how the real secret goes upstream. Default as "bearer".
	// Without its secret the vendor is built but not configured: every
	// call is refused with 503 (vendors.SwapCredential).
	Inject vendors.InjectConfig `json:"inject"`
	// ErrorFormat is the shape of Keybrake's own refusals: "json" (default),
	// "stripe", "twilio" or "resend".
	ErrorFormat string `json:"error_format,omitempty"`
	// FreeMethods lists the HTTP methods that cost nothing when no endpoint
	// below matches the request. Default (absent) ["GET","HEAD"]; an empty
	// list makes every unmatched request's cost unknown.
	FreeMethods []string `json:"free_methods,omitempty"`
	// Endpoints are the cost rules, tried in order; the first whose match
	// fits the request is used. A request no rule matches costs nothing if
	// its method is free, and is of unknown cost otherwise (the gate then
	// applies the vendor's unknown_cost policy). Default none.
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	// Idempotency declares that the vendor honours an idempotency header,
	// which alone lets a true replay through free. Default none: every
	// replay is priced like a new call.
	Idempotency *IdempotencyConfig `json:"idempotency,omitempty"`
}

// Endpoint is the cost rule of one endpoint.
type Endpoint struct {
	// Match is "METHOD /path", where a "*" segment matches exactly one path
	// segment, as in a key's allowed_endpoints. Required.
	Match string `json:"match"`
	// Estimate is the cost reserved before the call: the sum of its terms,
	// read from the request's JSON or form body. No terms: the call costs
	// nothing. If a term cannot be computed (a field with no default is
	// missing or not a number) the cost is unknown.
	Estimate []Term `json:"estimate,omitempty"`
	// Settle says how to read the real cost from a 2xx response.
	Settle SettleConfig `json:"settle,omitempty"`
}

// SettleConfig reads a successful response. A 4xx releases the reservation
// and anything else but a 2xx keeps it for reconciliation, whatever this
// says.
type SettleConfig struct {
	// TxnIDPath is a path into the response JSON whose value is recorded as
	// the vendor transaction id (e.g. "id"; several values, as with
	// "data.*.id", are joined with ","). Default: none recorded.
	TxnIDPath string `json:"txn_id_path,omitempty"`
	// Terms compute the real cost from the response JSON, as Estimate's do
	// from the request. No terms: the estimate is the cost. If a term
	// cannot be computed (the response is not JSON, as with a streamed
	// answer, or a field is missing) the estimate is kept as a provisional
	// cost (cost_state "unpriced"): never counted as $0.
	Terms []Term `json:"terms,omitempty"`
}

// Term is one part of a cost. Exactly one of FlatUSD, Field, Count or Chars
// is set.
//
//   - {"flat_usd":"0.01"}: a fixed amount per call.
//   - {"field":"max_tokens","price_usd":"0.000002","default":"4096"}: the
//     number at that path × price. Several values (a "*" path) are summed.
//   - {"count":"to","price_usd":"0.0009"}: how many items are at the path
//     (an array's length, 1 for a single value, 0 if absent) × price.
//   - {"chars":"messages.*.content","chars_per_unit":4,"price_usd":"…"}:
//     ceil(characters of every string under the path ÷ chars_per_unit) ×
//     price: a simple estimate of input tokens.
//
// The cost of a term is ceil(quantity × price) in micro-dollars, computed
// exactly; prices may have up to nine decimals.
type Term struct {
	// FlatUSD is a fixed amount in dollars.
	FlatUSD Decimal `json:"flat_usd,omitempty"`
	// Field is a path to a number (see the path syntax in path.go:
	// "a.b", "data.0.n", "items.*.qty", alternatives "a|b").
	Field string `json:"field,omitempty"`
	// Count is a path whose items are counted.
	Count string `json:"count,omitempty"`
	// Chars is a path whose strings' characters are counted.
	Chars string `json:"chars,omitempty"`
	// CharsPerUnit divides a Chars count (rounding up). Default 4, the
	// usual rule of thumb for characters per token. Only with Chars.
	CharsPerUnit int `json:"chars_per_unit,omitempty"`
	// PriceUSD is the price in dollars of one unit of quantity. Required
	// with Field, Count and Chars; refused with FlatUSD.
	PriceUSD Decimal `json:"price_usd,omitempty"`
	// Default is the quantity when Field names no value. Without it a
	// missing field makes the cost unknown. Only with Field.
	Default Decimal `json:"default,omitempty"`
	// Times multiplies the quantity by the number at this path (e.g. "n",
	// the number of completions asked for), 1 when absent. Not with
	// FlatUSD.
	Times string `json:"times,omitempty"`
	// Bound says the vendor takes this field as the most the call may use
	// (an LLM's max_tokens): Keybrake then writes it into the forwarded
	// body, set to Default when the request has none and lowered to what
	// the reservation covers, so the call cannot outspend its reservation.
	// Only on an estimate field term with a Default, whose path names
	// object keys only (no "*" or index). An endpoint whose cost is read
	// from the answer (settle terms) needs exactly one. Default false.
	Bound bool `json:"bound,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Validate checks the configuration and says what is wrong, field by field.
func (c Config) Validate() error {
	_, err := compile(c)
	return err
}

// Term kinds.
const (
	kindFlat = iota + 1
	kindField
	kindCount
	kindChars
)

type term struct {
	kind  int
	path  string
	price Price
	cpu   int64
	def   *big.Rat
	times string
	bound bool
}

type endpoint struct {
	match    allowlist.List
	entry    string
	estimate []term
	txnPath  string
	settle   []term
	// boundAt is the index of the bound estimate term, -1 when none.
	boundAt int
	// fields and singles are the request fields the estimate reads
	// (requestFields).
	fields, singles []string
}

type compiled struct {
	cfg       Config
	free      map[string]bool
	endpoints []endpoint
}

func compile(c Config) (*compiled, error) {
	if !nameRE.MatchString(c.Name) {
		return nil, fmt.Errorf("vendor name %q: want lower-case letters, digits, _ or -, starting with a letter, at most 32 characters", c.Name)
	}
	wrap := func(err error) error { return fmt.Errorf("vendor %s: %w", c.Name, err) }
	if c.Upstream != "" {
		u, err := url.Parse(c.Upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, wrap(fmt.Errorf("upstream %q: want an absolute http or https URL", c.Upstream))
		}
	}
	if err := c.Credential.Validate(); err != nil {
		return nil, wrap(err)
	}
	if err := c.Inject.Validate(); err != nil {
		return nil, wrap(err)
	}
	if c.ErrorFormat != "" && !vendors.ValidFormat(c.ErrorFormat) {
		return nil, wrap(fmt.Errorf("error_format %q: want json, stripe, twilio or resend", c.ErrorFormat))
	}
	if c.Idempotency != nil {
		if err := c.Idempotency.validate(c.Credential); err != nil {
			return nil, wrap(err)
		}
	}
	out := &compiled{cfg: c, free: map[string]bool{}}
	if out.cfg.ErrorFormat == "" {
		out.cfg.ErrorFormat = vendors.FormatJSON
	}
	free := c.FreeMethods
	if free == nil {
		free = []string{http.MethodGet, http.MethodHead}
	}
	for _, m := range free {
		if err := allowlist.CheckMethod(m); err != nil {
			return nil, wrap(fmt.Errorf("free_methods: unknown method %q", m))
		}
		out.free[m] = true
	}
	seen := map[string]bool{}
	for i, ep := range c.Endpoints {
		where := fmt.Sprintf("endpoints[%d] (%s)", i, ep.Match)
		list, err := allowlist.Parse([]string{ep.Match})
		if err != nil {
			return nil, wrap(fmt.Errorf("endpoints[%d]: match: %v", i, err))
		}
		method, path, _ := strings.Cut(strings.TrimSpace(ep.Match), " ")
		entry := method + " " + strings.TrimSpace(path)
		if seen[entry] {
			return nil, wrap(fmt.Errorf("%s: duplicate match; only the first would ever be used", where))
		}
		seen[entry] = true
		e := endpoint{match: list, entry: entry}
		for j, t := range ep.Estimate {
			ct, err := compileTerm(t)
			if err == nil && t.Bound {
				err = checkBound(t)
			}
			if err != nil {
				return nil, wrap(fmt.Errorf("%s: estimate[%d]: %v", where, j, err))
			}
			e.estimate = append(e.estimate, ct)
		}
		if ep.Settle.TxnIDPath != "" {
			if err := validatePath(ep.Settle.TxnIDPath); err != nil {
				return nil, wrap(fmt.Errorf("%s: settle: txn_id_path: %v", where, err))
			}
			e.txnPath = ep.Settle.TxnIDPath
		}
		for j, t := range ep.Settle.Terms {
			ct, err := compileTerm(t)
			if err == nil && t.Bound {
				err = fmt.Errorf("bound is only for estimate terms: it names a field of the request")
			}
			if err != nil {
				return nil, wrap(fmt.Errorf("%s: settle.terms[%d]: %v", where, j, err))
			}
			e.settle = append(e.settle, ct)
		}
		if err := e.checkBounded(); err != nil {
			return nil, wrap(fmt.Errorf("%s: %v", where, err))
		}
		e.fields, e.singles = e.requestFields()
		out.endpoints = append(out.endpoints, e)
	}
	return out, nil
}

func compileTerm(t Term) (term, error) {
	var ct term
	set := 0
	if t.FlatUSD != "" {
		set++
		ct.kind = kindFlat
	}
	if t.Field != "" {
		set++
		ct.kind, ct.path = kindField, t.Field
	}
	if t.Count != "" {
		set++
		ct.kind, ct.path = kindCount, t.Count
	}
	if t.Chars != "" {
		set++
		ct.kind, ct.path = kindChars, t.Chars
	}
	if set != 1 {
		return ct, fmt.Errorf("set exactly one of flat_usd, field, count, chars")
	}
	if ct.kind == kindFlat {
		if t.PriceUSD != "" || t.Default != "" || t.Times != "" || t.CharsPerUnit != 0 {
			return ct, fmt.Errorf("flat_usd takes no price_usd, default, times or chars_per_unit")
		}
		p, err := ParsePrice(string(t.FlatUSD))
		if err != nil {
			return ct, fmt.Errorf("flat_usd: %v", err)
		}
		ct.price = p
		return ct, nil
	}
	if err := validatePath(ct.path); err != nil {
		return ct, err
	}
	if t.PriceUSD == "" {
		return ct, fmt.Errorf("price_usd is required")
	}
	p, err := ParsePrice(string(t.PriceUSD))
	if err != nil {
		return ct, fmt.Errorf("price_usd: %v", err)
	}
	ct.price = p
	ct.bound = t.Bound
	if t.Default != "" {
		if ct.kind != kindField {
			return ct, fmt.Errorf("default is only for field")
		}
		if !configDecimal.MatchString(string(t.Default)) {
			return ct, fmt.Errorf("default %q: want a plain non-negative decimal", t.Default)
		}
		ct.def, _ = new(big.Rat).SetString(string(t.Default))
	}
	if t.CharsPerUnit != 0 && ct.kind != kindChars {
		return ct, fmt.Errorf("chars_per_unit is only for chars")
	}
	if ct.kind == kindChars {
		ct.cpu = int64(t.CharsPerUnit)
		if ct.cpu == 0 {
			ct.cpu = 4
		}
		if ct.cpu < 1 || ct.cpu > 1000 {
			return ct, fmt.Errorf("chars_per_unit %d: want 1 to 1000", t.CharsPerUnit)
		}
	}
	if t.Times != "" {
		if err := validatePath(t.Times); err != nil {
			return ct, fmt.Errorf("times: %v", err)
		}
		ct.times = t.Times
	}
	return ct, nil
}

// find returns the first endpoint matching the request, or nil.
func (c *compiled) find(method, path string) *endpoint {
	for i := range c.endpoints {
		if _, ok := c.endpoints[i].match.Match(method, path); ok {
			return &c.endpoints[i]
		}
	}
	return nil
}
