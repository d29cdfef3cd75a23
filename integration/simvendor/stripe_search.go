package simvendor

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// PaymentIntent search, after https://docs.stripe.com/search#search-query-language:
// clauses joined by AND or by OR (not both), each field:value (a quoted
// string), or for amount a number with :, >, <, >= or <=, optionally
// negated with a leading "-". Fields: metadata['key'], status, currency,
// customer, amount. Search is eventually consistent ("Don't use search for
// read-after-write flows... data is typically searchable in under 1
// minute", https://docs.stripe.com/search#data-freshness): an intent is
// found only once Config.StripeSearchLag has passed since it was created
// (later writes are searched at once: a simplification). Simplifications: the "~" substring
// operator and null are not supported, and everything matching is
// returned on one page.

var searchClause = regexp.MustCompile(`^(-?)(metadata\[['"]([^'"]+)['"]\]|[a-z_]+)(:|>=|<=|>|<)(.+)$`)

type searchTerm struct {
	negate bool
	field  string // "metadata" for metadata[...]
	key    string
	op     string
	value  string
}

func parseSearch(q string) (terms []searchTerm, or bool, err *stripeError) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, false, errMissing("query")
	}
	hasAnd, hasOr := strings.Contains(q, " AND "), strings.Contains(q, " OR ")
	if hasAnd && hasOr {
		return nil, false, invalidRequest(http.StatusBadRequest, "", "query", "Search queries cannot mix AND and OR.")
	}
	sep := " AND "
	if hasOr {
		sep = " OR "
	}
	for _, part := range strings.Split(q, sep) {
		m := searchClause.FindStringSubmatch(strings.TrimSpace(part))
		if m == nil {
			return nil, false, invalidRequest(http.StatusBadRequest, "", "query", "Invalid search query: %q could not be parsed.", part)
		}
		t := searchTerm{negate: m[1] == "-", field: m[2], key: m[3], op: m[4], value: m[5]}
		if t.key != "" {
			t.field = "metadata"
		}
		switch t.field {
		case "metadata", "status", "currency", "customer":
			if t.op != ":" || len(t.value) < 2 || (t.value[0] != '\'' && t.value[0] != '"') || t.value[len(t.value)-1] != t.value[0] {
				return nil, false, invalidRequest(http.StatusBadRequest, "", "query", "Invalid search query: %s takes a quoted string with ':'.", t.field)
			}
			t.value = t.value[1 : len(t.value)-1]
		case "amount":
			if _, e := strconv.ParseInt(t.value, 10, 64); e != nil {
				return nil, false, invalidRequest(http.StatusBadRequest, "", "query", "Invalid search query: amount takes a number.")
			}
		default:
			return nil, false, invalidRequest(http.StatusBadRequest, "", "query", "Invalid search query: field %q is not supported for payment_intents.", t.field)
		}
		terms = append(terms, t)
	}
	return terms, hasOr, nil
}

func (t searchTerm) match(pi *paymentIntent) bool {
	var ok bool
	switch t.field {
	case "metadata":
		ok = pi.metadata[t.key] == t.value
	case "status":
		ok = pi.status == t.value
	case "currency":
		ok = pi.currency == strings.ToLower(t.value)
	case "customer":
		ok = pi.customer == t.value
	case "amount":
		n, _ := strconv.ParseInt(t.value, 10, 64)
		switch t.op {
		case ":":
			ok = pi.amount == n
		case ">":
			ok = pi.amount > n
		case "<":
			ok = pi.amount < n
		case ">=":
			ok = pi.amount >= n
		case "<=":
			ok = pi.amount <= n
		}
	}
	return ok != t.negate
}

func piSearch(c *stripeCall) (any, *stripeError) {
	terms, or, e := parseSearch(c.p.str("query"))
	if e != nil {
		return nil, e
	}
	data := []any{}
	for _, pi := range c.acct.intents.newestFirst() {
		if c.now.Sub(pi.created) < c.s.cfg.StripeSearchLag {
			continue // not in the search index yet
		}
		hit := !or
		for _, t := range terms {
			if or {
				hit = hit || t.match(pi)
			} else {
				hit = hit && t.match(pi)
			}
		}
		if hit {
			data = append(data, pi.render())
		}
	}
	return obj{"object": "search_result", "data": c.listLimit(data), "has_more": false,
		"next_page": nil, "url": "/v1/payment_intents/search"}, nil
}
