package simvendor

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// params is a Stripe request's form parameters, keys in Stripe's bracket
// notation (metadata[k], items[0][price]).
type params url.Values

func (p params) has(k string) bool { _, ok := p[k]; return ok }

func (p params) str(k string) string {
	if v := p[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// int returns k as an integer; ok is false when k is absent, err set when it
// is present but not an integer.
func (p params) int(k string) (n int64, ok bool, err *stripeError) {
	if !p.has(k) {
		return 0, false, nil
	}
	n, e := strconv.ParseInt(p.str(k), 10, 64)
	if e != nil {
		return 0, true, errInvalidInteger(k, p.str(k))
	}
	return n, true, nil
}

// bool returns k as a boolean ("true"/"false"); absent is def.
func (p params) bool(k string, def bool) (bool, *stripeError) {
	if !p.has(k) {
		return def, nil
	}
	switch p.str(k) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errInvalidBoolean(k, p.str(k))
}

// sub returns the entries under name[…]: metadata → {"k": "v"} for
// metadata[k]=v. An empty "metadata=" unsets: it returns an empty non-nil
// map with unset true.
func (p params) sub(name string) (m map[string]string, unset bool) {
	prefix := name + "["
	for k, v := range p {
		if k == name && len(v) > 0 && v[0] == "" {
			unset = true
			continue
		}
		if !strings.HasPrefix(k, prefix) || !strings.HasSuffix(k, "]") || len(v) == 0 {
			continue
		}
		if m == nil {
			m = map[string]string{}
		}
		m[k[len(prefix):len(k)-1]] = v[0]
	}
	return m, unset
}

// list returns name[0][field]=… entries, in index order, as maps of field
// to value.
func (p params) list(name string) []map[string]string {
	prefix := name + "["
	byIndex := map[int]map[string]string{}
	for k, v := range p {
		if !strings.HasPrefix(k, prefix) || len(v) == 0 {
			continue
		}
		rest := k[len(prefix):]
		close := strings.IndexByte(rest, ']')
		if close < 0 {
			continue
		}
		i, err := strconv.Atoi(rest[:close])
		if err != nil {
			continue
		}
		field := strings.TrimSuffix(strings.TrimPrefix(rest[close+1:], "["), "]")
		if byIndex[i] == nil {
			byIndex[i] = map[string]string{}
		}
		byIndex[i][field] = v[0]
	}
	idx := make([]int, 0, len(byIndex))
	for i := range byIndex {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := make([]map[string]string, len(idx))
	for j, i := range idx {
		out[j] = byIndex[i]
	}
	return out
}

// fingerprint is the canonical form of the parameters, as Stripe's
// idempotency layer compares them: the same parameters in another order are
// the same request.
func (p params) fingerprint() string { return url.Values(p).Encode() }

// mergeMetadata applies metadata[k]=v updates to m the way Stripe does: an
// empty value deletes the key, "metadata=" clears everything.
func mergeMetadata(m map[string]string, p params) map[string]string {
	upd, unset := p.sub("metadata")
	if m == nil || unset {
		m = map[string]string{}
	}
	for k, v := range upd {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
