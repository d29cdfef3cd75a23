package keyapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/allowlist"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

var (
	keyIDPattern  = regexp.MustCompile(`^vk[A-Za-z0-9]{22}$`)
	secretPattern = regexp.MustCompile(`^kb[A-Za-z0-9]{43}$`)
)

func TestCreateKey(t *testing.T) {
	e := newEnv(t)
	rec := e.do(http.MethodPost, "/vault/keys", validKeyBody)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	var id, secret string
	_ = json.Unmarshal(got["key_id"], &id)
	_ = json.Unmarshal(got["vault_key"], &secret)
	if !keyIDPattern.MatchString(id) {
		t.Errorf("key_id %q", id)
	}
	if !secretPattern.MatchString(secret) {
		t.Errorf("vault_key %q", secret)
	}
	if loc := rec.Header().Get("Location"); loc != "/vault/keys/"+id {
		t.Errorf("Location %q", loc)
	}

	want := map[string]string{
		"vendor":            `"stripe"`,
		"agent_run_label":   `"windmill/0193abc"`,
		"allowed_endpoints": `["POST /v1/payment_intents","GET /v1/customers/*"]`,
		"daily_usd_cap":     `50`,
		"total_usd_cap":     `200`,
		"metadata":          `{"flow":"refunds","n":1}`,
		"created_at":        `"2025-03-01T12:00:00.123456Z"`,
		"expires_at":        `"2025-03-01T14:00:00.123456Z"`,
		"revoked_at":        `null`,
		"status":            `"active"`,
		"spent_usd":         `0`,
		"reserved_usd":      `0`,
		"remaining_usd":     `50`,
		"daily_spent_usd":   `0`,
		"calls":             `0`,
		"cap_hits":          `0`,
		"rules":             `null`,
		"rule_calls":        `0`,
		"approval":          `null`,
	}
	for field, w := range want {
		if string(got[field]) != w {
			t.Errorf("%s = %s, want %s", field, got[field], w)
		}
	}
	if len(got) != len(want)+2 {
		t.Errorf("fields %d, want %d: %s", len(got), len(want)+2, rec.Body)
	}

	// Only the hash of the secret is stored.
	k, ok := e.store.key(id)
	if !ok {
		t.Fatal("key not stored")
	}
	if k.Hash != ledger.HashSecret(secret) {
		t.Error("stored hash is not the SHA-256 of the vault key")
	}
	if *k.DailyCap != 50*money.PerDollar || *k.TotalCap != 200*money.PerDollar {
		t.Errorf("caps %v %v", *k.DailyCap, *k.TotalCap)
	}
	if k.ExpiresAt.Sub(k.CreatedAt) != 2*time.Hour {
		t.Errorf("TTL %s", k.ExpiresAt.Sub(k.CreatedAt))
	}
	if b, _ := json.Marshal(k); strings.Contains(string(b), secret) {
		t.Error("stored key contains the secret")
	}
}

func TestCreateKeyExactMoneyAndDefaults(t *testing.T) {
	e := newEnv(t)
	rec := e.do(http.MethodPost, "/vault/keys",
		`{"vendor":"twilio","daily_usd_cap":0.1,"allowed_endpoints":["POST /x","POST  /x","GET /y"]}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for _, frag := range []string{`"daily_usd_cap":0.1,`, `"total_usd_cap":null`, `"remaining_usd":0.1,`,
		`"metadata":null`, `"agent_run_label":""`, `"allowed_endpoints":["POST /x","GET /y"]`,
		`"expires_at":"2025-03-01T13:00:00.123456Z"`} {
		if !strings.Contains(body, frag) {
			t.Errorf("response lacks %s: %s", frag, body)
		}
	}
	m := decodeMap(t, rec)
	k, _ := e.store.key(m["key_id"].(string))
	if *k.DailyCap != 100_000 || k.TotalCap != nil {
		t.Errorf("daily cap %d micros, total %v", *k.DailyCap, k.TotalCap)
	}

	// Numeric strings, tiny amounts, an empty allowlist (the key can call
	// nothing), days, and null for optional fields are all accepted.
	rec = e.do(http.MethodPost, "/vault/keys",
		`{"vendor":"resend","total_usd_cap":"0.000001","daily_usd_cap":null,"allowed_endpoints":[],"expires_in":"1d","metadata":null}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	body = rec.Body.String()
	for _, frag := range []string{`"total_usd_cap":0.000001`, `"allowed_endpoints":[]`, `"expires_at":"2025-03-02T12:00:00.123456Z"`} {
		if !strings.Contains(body, frag) {
			t.Errorf("response lacks %s: %s", frag, body)
		}
	}
}

func TestCreateKeyTTLConfig(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxTTL = 72 * time.Hour; c.DefaultTTL = 10 * time.Minute })
	m := e.createKey(`{"vendor":"stripe","total_usd_cap":1}`)
	if m["expires_at"] != "2025-03-01T12:10:00.123456Z" {
		t.Errorf("default TTL: expires_at %v", m["expires_at"])
	}
	m = e.createKey(`{"vendor":"stripe","total_usd_cap":1,"expires_in":"2d12h"}`)
	if m["expires_at"] != "2025-03-04T00:00:00.123456Z" {
		t.Errorf("2d12h: expires_at %v", m["expires_at"])
	}
	rec := e.do(http.MethodPost, "/vault/keys", `{"vendor":"stripe","total_usd_cap":1,"expires_in":"73h"}`)
	d := wantError(t, rec, http.StatusBadRequest, "parameter_invalid", "expires_in")
	if !strings.Contains(d.Message, "72h") {
		t.Errorf("message does not give the max TTL: %q", d.Message)
	}
}

func TestCreateKeyValidation(t *testing.T) {
	many := make([]string, allowlist.MaxEntries+1)
	for i := range many {
		many[i] = fmt.Sprintf("GET /v1/x%d", i)
	}
	manyJSON, _ := json.Marshal(many)
	bigMeta := `{"a":"` + strings.Repeat("x", maxMetadataBytes) + `"}`
	label201 := strings.Repeat("a", 201)

	const base = `"vendor":"stripe","total_usd_cap":10`
	cases := []struct {
		name, body, code, field string
	}{
		{"vendor missing", `{"total_usd_cap":10}`, codeParameterMissing, "vendor"},
		{"vendor empty", `{"vendor":"","total_usd_cap":10}`, codeParameterMissing, "vendor"},
		{"vendor unknown", `{"vendor":"paypal","total_usd_cap":10}`, codeParameterInvalid, "vendor"},
		{"vendor wrong case", `{"vendor":"Stripe","total_usd_cap":10}`, codeParameterInvalid, "vendor"},
		{"vendor not a string", `{"vendor":5,"total_usd_cap":10}`, codeParameterInvalid, "vendor"},
		{"no cap", `{"vendor":"stripe"}`, codeParameterMissing, "total_usd_cap"},
		{"both caps null", `{"vendor":"stripe","daily_usd_cap":null,"total_usd_cap":null}`, codeParameterMissing, "total_usd_cap"},
		{"daily zero", `{"vendor":"stripe","daily_usd_cap":0}`, codeParameterInvalid, "daily_usd_cap"},
		{"daily negative", `{"vendor":"stripe","daily_usd_cap":-1}`, codeParameterInvalid, "daily_usd_cap"},
		{"daily string negative", `{"vendor":"stripe","daily_usd_cap":"-1"}`, codeParameterInvalid, "daily_usd_cap"},
		{"total exponent", `{"vendor":"stripe","total_usd_cap":1e3}`, codeParameterInvalid, "total_usd_cap"},
		{"total too precise", `{"vendor":"stripe","total_usd_cap":0.0000001}`, codeParameterInvalid, "total_usd_cap"},
		{"total too large", `{"vendor":"stripe","total_usd_cap":1000000000001}`, codeParameterInvalid, "total_usd_cap"},
		{"total word", `{"vendor":"stripe","total_usd_cap":"ten"}`, codeParameterInvalid, "total_usd_cap"},
		{"total bool", `{"vendor":"stripe","total_usd_cap":true}`, codeParameterInvalid, "total_usd_cap"},
		{"total object", `{"vendor":"stripe","total_usd_cap":{}}`, codeParameterInvalid, "total_usd_cap"},
		{"total zero, daily fine", `{"vendor":"stripe","daily_usd_cap":5,"total_usd_cap":0}`, codeParameterInvalid, "total_usd_cap"},
		{"expires_in words", `{` + base + `,"expires_in":"2 hours"}`, codeParameterInvalid, "expires_in"},
		{"expires_in empty", `{` + base + `,"expires_in":""}`, codeParameterInvalid, "expires_in"},
		{"expires_in zero", `{` + base + `,"expires_in":"0s"}`, codeParameterInvalid, "expires_in"},
		{"expires_in negative", `{` + base + `,"expires_in":"-1h"}`, codeParameterInvalid, "expires_in"},
		{"expires_in over max", `{` + base + `,"expires_in":"24h1s"}`, codeParameterInvalid, "expires_in"},
		{"expires_in two days", `{` + base + `,"expires_in":"2d"}`, codeParameterInvalid, "expires_in"},
		{"expires_in fractional days", `{` + base + `,"expires_in":"0.5d"}`, codeParameterInvalid, "expires_in"},
		{"expires_in number", `{` + base + `,"expires_in":3600}`, codeParameterInvalid, "expires_in"},
		{"endpoints not an array", `{` + base + `,"allowed_endpoints":"POST /v1/x"}`, codeParameterInvalid, "allowed_endpoints"},
		{"endpoint not a string", `{` + base + `,"allowed_endpoints":[1]}`, codeParameterInvalid, "allowed_endpoints"},
		{"too many endpoints", `{` + base + `,"allowed_endpoints":` + string(manyJSON) + `}`, codeParameterInvalid, "allowed_endpoints"},
		{"endpoint lowercase method", `{` + base + `,"allowed_endpoints":["GET /ok","post /v1/x"]}`, codeParameterInvalid, "allowed_endpoints[1]"},
		{"endpoint unknown method", `{` + base + `,"allowed_endpoints":["FETCH /v1/x"]}`, codeParameterInvalid, "allowed_endpoints[0]"},
		{"endpoint any method", `{` + base + `,"allowed_endpoints":["* /v1/x"]}`, codeParameterInvalid, "allowed_endpoints[0]"},
		{"endpoint no path", `{` + base + `,"allowed_endpoints":["POST"]}`, codeParameterInvalid, "allowed_endpoints[0]"},
		{"endpoint relative path", `{` + base + `,"allowed_endpoints":["POST v1/x"]}`, codeParameterInvalid, "allowed_endpoints[0]"},
		{"endpoint partial wildcard", `{` + base + `,"allowed_endpoints":["GET /v1/cus*"]}`, codeParameterInvalid, "allowed_endpoints[0]"},
		{"endpoint empty segment", `{` + base + `,"allowed_endpoints":["GET /v1//x"]}`, codeParameterInvalid, "allowed_endpoints[0]"},
		// Accepted once while the gate refused it (so the key could call
		// nothing): one grammar now refuses it when the key is issued.
		{"endpoint trailing slash", `{` + base + `,"allowed_endpoints":["GET /v1/customers/*","GET /v1/customers/"]}`, codeParameterInvalid, "allowed_endpoints[1]"},
		{"endpoint root", `{` + base + `,"allowed_endpoints":["GET /"]}`, codeParameterInvalid, "allowed_endpoints[0]"},
		{"endpoint dot-dot", `{` + base + `,"allowed_endpoints":["GET /v1/../admin"]}`, codeParameterInvalid, "allowed_endpoints[0]"},
		{"endpoint query", `{` + base + `,"allowed_endpoints":["GET /v1/x?expand=y"]}`, codeParameterInvalid, "allowed_endpoints[0]"},
		{"endpoint percent", `{` + base + `,"allowed_endpoints":["GET /v1/%2e%2e"]}`, codeParameterInvalid, "allowed_endpoints[0]"},
		{"endpoint three parts", `{` + base + `,"allowed_endpoints":["GET /a /b"]}`, codeParameterInvalid, "allowed_endpoints[0]"},
		{"label too long", `{` + base + `,"agent_run_label":"` + label201 + `"}`, codeParameterInvalid, "agent_run_label"},
		{"label newline", `{` + base + `,"agent_run_label":"run\n1"}`, codeParameterInvalid, "agent_run_label"},
		{"label NUL", `{` + base + `,"agent_run_label":"run\u00001"}`, codeParameterInvalid, "agent_run_label"},
		{"label not a string", `{` + base + `,"agent_run_label":7}`, codeParameterInvalid, "agent_run_label"},
		{"metadata array", `{` + base + `,"metadata":[1]}`, codeParameterInvalid, "metadata"},
		{"metadata string", `{` + base + `,"metadata":"x"}`, codeParameterInvalid, "metadata"},
		{"metadata number", `{` + base + `,"metadata":1}`, codeParameterInvalid, "metadata"},
		{"metadata too big", `{` + base + `,"metadata":` + bigMeta + `}`, codeParameterInvalid, "metadata"},
		{"unknown field", `{` + base + `,"daily_cap":5}`, codeParameterUnknown, "daily_cap"},
		{"invalid JSON", `{"vendor":`, codeInvalidJSON, ""},
		{"empty body", ``, codeInvalidJSON, ""},
		{"whitespace body", "  \n", codeInvalidJSON, ""},
		{"array body", `[{"vendor":"stripe"}]`, codeInvalidJSON, ""},
		{"trailing data", `{` + base + `} {}`, codeInvalidJSON, ""},
	}
	e := newEnv(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(http.MethodPost, "/vault/keys", tc.body)
			wantError(t, rec, http.StatusBadRequest, tc.code, tc.field)
		})
	}
	if n := e.store.numKeys(); n != 0 {
		t.Errorf("%d keys stored by refused requests", n)
	}
}

func TestCreateKeyAcceptsEdgeValues(t *testing.T) {
	e := newEnv(t)
	label := strings.Repeat("é", 200) // 200 characters, 400 bytes
	body := fmt.Sprintf(`{"vendor":"stripe","total_usd_cap":1000000000000,"daily_usd_cap":"0.50",`+
		`"expires_in":"24h","agent_run_label":%q,"metadata":{"a":"%s"},`+
		`"allowed_endpoints":["GET /2010-04-01/Accounts/*/Messages.json","DELETE /v1/customers/*/sources/*","OPTIONS /*"]}`,
		label, strings.Repeat("x", maxMetadataBytes-10))
	m := e.createKey(body)
	if m["agent_run_label"] != label {
		t.Errorf("label %v", m["agent_run_label"])
	}
	if !strings.Contains(fmt.Sprint(m["total_usd_cap"]), "1e+12") {
		t.Errorf("total cap %v", m["total_usd_cap"])
	}
}

func TestCreateKeyBodyTooLarge(t *testing.T) {
	e := newEnv(t)
	big := `{"vendor":"stripe","total_usd_cap":1,"metadata":{"a":"` + strings.Repeat("x", maxBodyBytes) + `"}}`
	rec := e.do(http.MethodPost, "/vault/keys", big)
	wantError(t, rec, http.StatusRequestEntityTooLarge, "payload_too_large", "")

	// Without a Content-Length (chunked), the reader stops at the cap.
	req := newRequest(http.MethodPost, "/vault/keys", big)
	req.ContentLength = -1
	rec = serve(e.h, req)
	wantError(t, rec, http.StatusRequestEntityTooLarge, "payload_too_large", "")
	if n := e.store.numKeys(); n != 0 {
		t.Errorf("%d keys stored", n)
	}
}

func TestCreateKeyRetriesConflict(t *testing.T) {
	e := newEnv(t)
	e.store.createErrs = []error{fmt.Errorf("dup: %w", ledger.ErrConflict)}
	e.createKey(validKeyBody)
	if e.store.createCalls != 2 {
		t.Errorf("CreateKey called %d times, want 2", e.store.createCalls)
	}

	e = newEnv(t)
	e.store.createErrs = []error{ledger.ErrConflict, ledger.ErrConflict, ledger.ErrConflict}
	rec := e.do(http.MethodPost, "/vault/keys", validKeyBody)
	wantError(t, rec, http.StatusInternalServerError, "internal_error", "")
}

func TestGetKey(t *testing.T) {
	e := newEnv(t)
	created := e.createKey(validKeyBody)
	id := created["key_id"].(string)
	e.store.setUsage(id, func(u *ledger.KeyUsage) {
		u.Spent = 120 * money.PerDollar
		u.Reserved = 500_000
		u.DaySpent = 30 * money.PerDollar
		u.DayReserved = 100_000
		u.Calls = 7
		u.CapHits = 2
	})

	rec := e.do(http.MethodGet, "/vault/keys/"+id, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	// daily: 50 − 30 − 0.1 = 19.9; total: 200 − 120 − 0.5 = 79.5.
	for _, frag := range []string{`"spent_usd":120,`, `"reserved_usd":0.5,`, `"remaining_usd":19.9,`,
		`"daily_spent_usd":30,`, `"calls":7,`, `"cap_hits":2`, `"status":"active"`} {
		if !strings.Contains(body, frag) {
			t.Errorf("response lacks %s: %s", frag, body)
		}
	}
	if strings.Contains(body, "vault_key") {
		t.Errorf("GET shows vault_key: %s", body)
	}
	m := decodeMap(t, rec)
	for _, f := range []string{"key_id", "vendor", "agent_run_label", "allowed_endpoints", "metadata", "created_at", "expires_at", "revoked_at"} {
		if fmt.Sprint(m[f]) != fmt.Sprint(created[f]) {
			t.Errorf("%s: GET %v, POST %v", f, m[f], created[f])
		}
	}

	// Status follows the clock.
	e.now = testNow.Add(2 * time.Hour)
	if m := decodeMap(t, e.do(http.MethodGet, "/vault/keys/"+id, "")); m["status"] != "expired" {
		t.Errorf("status after expiry %v", m["status"])
	}

	wantError(t, e.do(http.MethodGet, "/vault/keys/vkNOPE0000000000000000000", ""), http.StatusNotFound, "not_found", "")
	wantError(t, e.do(http.MethodGet, "/vault/keys/vk-bad!", ""), http.StatusNotFound, "not_found", "")
	wantError(t, e.do(http.MethodGet, "/vault/keys/"+strings.Repeat("a", 65), ""), http.StatusNotFound, "not_found", "")
	wantError(t, e.do(http.MethodGet, "/vault/keys/"+id+"?expand=x", ""), http.StatusBadRequest, "parameter_unknown", "expand")
}

func TestRemaining(t *testing.T) {
	m := func(d int64) *money.Micros { v := money.Micros(d); return &v }
	cases := []struct {
		name string
		u    ledger.KeyUsage
		want money.Micros
	}{
		{"total only", ledger.KeyUsage{Key: ledger.Key{TotalCap: m(100)}, Spent: 30, Reserved: 20, DaySpent: 99}, 50},
		{"daily only", ledger.KeyUsage{Key: ledger.Key{DailyCap: m(100)}, Spent: 500, DaySpent: 30, DayReserved: 5}, 65},
		{"daily tighter", ledger.KeyUsage{Key: ledger.Key{DailyCap: m(10), TotalCap: m(100)}, Spent: 5, DaySpent: 5}, 5},
		{"total tighter", ledger.KeyUsage{Key: ledger.Key{DailyCap: m(100), TotalCap: m(10)}, Spent: 8, DaySpent: 0}, 2},
		{"over the cap floors at 0", ledger.KeyUsage{Key: ledger.Key{TotalCap: m(10)}, Spent: 8, Reserved: 5}, 0},
		{"no cap", ledger.KeyUsage{}, 0},
	}
	for _, tc := range cases {
		if got := remaining(tc.u); got != tc.want {
			t.Errorf("%s: remaining %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestListKeys(t *testing.T) {
	e := newEnv(t)
	a := e.createKey(`{"vendor":"stripe","total_usd_cap":1,"agent_run_label":"run-a"}`)["key_id"]
	b := e.createKey(`{"vendor":"twilio","total_usd_cap":1,"agent_run_label":"run-a"}`)["key_id"]
	c := e.createKey(`{"vendor":"stripe","total_usd_cap":1,"agent_run_label":"run-b"}`)["key_id"]

	ids := func(target string) ([]any, any) {
		t.Helper()
		rec := e.do(http.MethodGet, target, "")
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", target, rec.Code, rec.Body)
		}
		m := decodeMap(t, rec)
		var out []any
		for _, k := range m["data"].([]any) {
			km := k.(map[string]any)
			if _, ok := km["vault_key"]; ok {
				t.Errorf("list shows vault_key")
			}
			out = append(out, km["key_id"])
		}
		return out, m["next_cursor"]
	}

	got, next := ids("/vault/keys")
	if fmt.Sprint(got) != fmt.Sprint([]any{c, b, a}) || next != nil {
		t.Errorf("all keys: %v next %v", got, next)
	}
	if f := e.store.lastKeyFilter(); f.Limit != 100 || !f.Now.Equal(testNow.Truncate(time.Microsecond)) {
		t.Errorf("default filter %+v", f)
	}
	got, _ = ids("/vault/keys?agent_run_label=run-a&vendor=stripe")
	if fmt.Sprint(got) != fmt.Sprint([]any{a}) {
		t.Errorf("filtered: %v", got)
	}

	// Pagination: the store's cursor is passed through both ways.
	got, next = ids("/vault/keys?limit=2")
	if fmt.Sprint(got) != fmt.Sprint([]any{c, b}) || next != "o2" {
		t.Errorf("page 1: %v next %v", got, next)
	}
	got, next = ids("/vault/keys?limit=2&cursor=o2")
	if fmt.Sprint(got) != fmt.Sprint([]any{a}) || next != nil {
		t.Errorf("page 2: %v next %v", got, next)
	}
	if f := e.store.lastKeyFilter(); f.Cursor != "o2" || f.Limit != 2 {
		t.Errorf("filter %+v", f)
	}

	// Status filter, evaluated at the handler's clock.
	e.do(http.MethodDelete, "/vault/keys/"+b.(string), "")
	got, _ = ids("/vault/keys?status=revoked")
	if fmt.Sprint(got) != fmt.Sprint([]any{b}) {
		t.Errorf("revoked: %v", got)
	}
	if f := e.store.lastKeyFilter(); f.Status != "revoked" {
		t.Errorf("filter %+v", f)
	}

	rec := e.do(http.MethodGet, "/vault/keys?vendor=nobody", "")
	if !strings.Contains(rec.Body.String(), `"data":[]`) || !strings.Contains(rec.Body.String(), `"next_cursor":null`) {
		t.Errorf("empty list: %s", rec.Body)
	}
}

func TestListKeysValidation(t *testing.T) {
	e := newEnv(t)
	cases := []struct{ query, code, field string }{
		{"status=paused", codeParameterInvalid, "status"},
		{"limit=0", codeParameterInvalid, "limit"},
		{"limit=1001", codeParameterInvalid, "limit"},
		{"limit=ten", codeParameterInvalid, "limit"},
		{"limit=-1", codeParameterInvalid, "limit"},
		{"cursor=" + strings.Repeat("c", maxCursorLength+1), codeParameterInvalid, "cursor"},
		{"agent_run=x", codeParameterUnknown, "agent_run"},
		{"vendor=a&vendor=b", codeParameterInvalid, "vendor"},
		{"label=%zz", codeParameterInvalid, ""},
	}
	for _, tc := range cases {
		rec := e.do(http.MethodGet, "/vault/keys?"+tc.query, "")
		wantError(t, rec, http.StatusBadRequest, tc.code, tc.field)
	}
	for _, q := range []string{"limit=1", "limit=1000", "status=active", "status=expired"} {
		if rec := e.do(http.MethodGet, "/vault/keys?"+q, ""); rec.Code != http.StatusOK {
			t.Errorf("%s: status %d", q, rec.Code)
		}
	}
}

func TestRevokeKey(t *testing.T) {
	e := newEnv(t)
	id := e.createKey(validKeyBody)["key_id"].(string)

	e.now = testNow.Add(time.Minute)
	rec := e.do(http.MethodDelete, "/vault/keys/"+id, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	m := decodeMap(t, rec)
	if m["status"] != "revoked" || m["revoked_at"] != "2025-03-01T12:01:00.123456Z" || m["key_id"] != id {
		t.Errorf("revoked view %v", m)
	}
	if _, ok := m["vault_key"]; ok {
		t.Error("DELETE shows vault_key")
	}
	if fmt.Sprint(e.revoked) != fmt.Sprint([]string{id}) {
		t.Errorf("OnRevoke calls %v", e.revoked)
	}

	// Revoking again keeps the first time and tells the cache again.
	e.now = testNow.Add(time.Hour)
	m = decodeMap(t, e.do(http.MethodDelete, "/vault/keys/"+id, ""))
	if m["revoked_at"] != "2025-03-01T12:01:00.123456Z" {
		t.Errorf("second revoke moved revoked_at: %v", m["revoked_at"])
	}
	if len(e.revoked) != 2 {
		t.Errorf("OnRevoke calls %v", e.revoked)
	}
	if m = decodeMap(t, e.do(http.MethodGet, "/vault/keys/"+id, "")); m["status"] != "revoked" {
		t.Errorf("GET after revoke: %v", m["status"])
	}

	wantError(t, e.do(http.MethodDelete, "/vault/keys/vkNOPE0000000000000000000", ""), http.StatusNotFound, "not_found", "")
	wantError(t, e.do(http.MethodDelete, "/vault/keys/not_a_key", ""), http.StatusNotFound, "not_found", "")
	if len(e.revoked) != 2 {
		t.Errorf("OnRevoke called for a missing key: %v", e.revoked)
	}

	// A failure reading the key back is reported; the revocation stands
	// and a retry is safe.
	e.store.getErr = fmt.Errorf("read: %w", ledger.ErrUnavailable)
	wantError(t, e.do(http.MethodDelete, "/vault/keys/"+id, ""), http.StatusServiceUnavailable, "ledger_unavailable", "")
}

func TestOnRevokeOptional(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.OnRevoke = nil })
	id := e.createKey(validKeyBody)["key_id"].(string)
	if rec := e.do(http.MethodDelete, "/vault/keys/"+id, ""); rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
}

// The vault key secret appears in the POST answer only: never in a GET,
// list, revoke or audit answer, and never in the logs.
func TestSecretShownOnce(t *testing.T) {
	e := newEnv(t)
	rec := e.do(http.MethodPost, "/vault/keys", validKeyBody)
	created := decodeMap(t, rec)
	secret := created["vault_key"].(string)
	id := created["key_id"].(string)
	if !strings.Contains(rec.Body.String(), secret) {
		t.Fatal("POST answer lacks the secret")
	}
	e.store.calls = append(e.store.calls, ledger.Call{CallID: "c1", KeyID: id, RunLabel: "windmill/0193abc", StartedAt: testNow})

	for _, r := range []struct{ method, target string }{
		{http.MethodGet, "/vault/keys/" + id},
		{http.MethodGet, "/vault/keys"},
		{http.MethodGet, "/vault/keys?agent_run_label=windmill/0193abc"},
		{http.MethodGet, "/vault/audit?key_id=" + id},
		{http.MethodGet, "/vault/audit?format=csv"},
		{http.MethodGet, "/vault/summary?agent_run_label=windmill/0193abc"},
		{http.MethodDelete, "/vault/keys/" + id},
		{http.MethodGet, "/vault/keys/" + secret},
	} {
		rec := e.do(r.method, r.target, "")
		if strings.Contains(rec.Body.String(), secret) || strings.Contains(fmt.Sprint(rec.Header()), secret) {
			t.Errorf("%s %s shows the secret", r.method, r.target)
		}
	}
	logs := e.logText()
	if e.logs.Len() == 0 || !strings.Contains(logs, id) {
		t.Fatalf("expected log lines naming the key:\n%s", logs)
	}
	if strings.Contains(logs, secret) || strings.Contains(logs, secret[2:]) {
		t.Errorf("the secret was logged:\n%s", logs)
	}
	if strings.Contains(logs, testToken) {
		t.Errorf("the API token was logged:\n%s", logs)
	}
}

// TestCreateKeyDailyOnlyAcrossMidnight: a key with only a daily cap whose
// life crosses a UTC midnight gets the daily cap as its total too, so it
// cannot spend the cap once on each side of midnight; within one UTC day,
// or with an explicit total, the caps are as asked.
func TestCreateKeyDailyOnlyAcrossMidnight(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		now        time.Time
		wantTotal  string
	}{
		{"crosses midnight", `{"vendor":"stripe","daily_usd_cap":50,"expires_in":"2h","allowed_endpoints":["POST /v1/charges"]}`,
			time.Date(2025, 3, 1, 23, 0, 0, 0, time.UTC), `"total_usd_cap":50,`},
		{"ends at midnight", `{"vendor":"stripe","daily_usd_cap":50,"expires_in":"1h","allowed_endpoints":["POST /v1/charges"]}`,
			time.Date(2025, 3, 1, 23, 0, 0, 0, time.UTC), `"total_usd_cap":null,`},
		{"one day", `{"vendor":"stripe","daily_usd_cap":50,"expires_in":"2h","allowed_endpoints":["POST /v1/charges"]}`,
			time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC), `"total_usd_cap":null,`},
		{"explicit total", `{"vendor":"stripe","daily_usd_cap":50,"total_usd_cap":120,"expires_in":"20h","allowed_endpoints":["POST /v1/charges"]}`,
			time.Date(2025, 3, 1, 23, 0, 0, 0, time.UTC), `"total_usd_cap":120,`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.now = tc.now
			rec := e.do("POST", "/vault/keys", tc.body)
			if rec.Code != http.StatusCreated {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tc.wantTotal) {
				t.Errorf("body %s; want %s", rec.Body, tc.wantTotal)
			}
		})
	}
}

// TestCreateKeyTooManyDecimals: a cap computed with floats is refused with
// the rounded value to send instead.
func TestCreateKeyTooManyDecimals(t *testing.T) {
	e := newEnv(t)
	rec := e.do("POST", "/vault/keys", `{"vendor":"stripe","total_usd_cap":439.78000000000003,"allowed_endpoints":["POST /v1/charges"]}`)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "round it to 6 decimals, e.g. 439.78 ") {
		t.Errorf("%d %s; want 400 suggesting 439.78", rec.Code, rec.Body)
	}
	rec = e.do("POST", "/vault/keys", `{"vendor":"stripe","total_usd_cap":"0.1234565","allowed_endpoints":["POST /v1/charges"]}`)
	if !strings.Contains(rec.Body.String(), "e.g. 0.123457 ") {
		t.Errorf("%s; want 0.123457 suggested (half up)", rec.Body)
	}
}

// TestPatchKeyDailyOnlyAcrossMidnight: a PATCH that makes a daily-only
// key's life cross a UTC midnight (a longer expiry, with or without a new
// daily cap) bounds its total by the daily cap, as at issue; within
// one UTC day nothing is added.
func TestPatchKeyDailyOnlyAcrossMidnight(t *testing.T) {
	for _, tc := range []struct {
		name, create, patch, wantTotal string
	}{
		{"longer expiry", `{"vendor":"stripe","daily_usd_cap":50,"expires_in":"1h","allowed_endpoints":["POST /v1/charges"]}`,
			`{"expires_in":"5h"}`, `"total_usd_cap":50,`},
		{"expiry within the day", `{"vendor":"stripe","daily_usd_cap":50,"expires_in":"1h","allowed_endpoints":["POST /v1/charges"]}`,
			`{"expires_in":"2h"}`, `"total_usd_cap":null,`},
		{"new daily cap and expiry", `{"vendor":"stripe","daily_usd_cap":50,"expires_in":"1h","allowed_endpoints":["POST /v1/charges"]}`,
			`{"daily_usd_cap":30,"expires_in":"6h"}`, `"total_usd_cap":30,`},
		{"explicit total kept", `{"vendor":"stripe","daily_usd_cap":50,"total_usd_cap":80,"expires_in":"1h","allowed_endpoints":["POST /v1/charges"]}`,
			`{"expires_in":"5h"}`, `"total_usd_cap":80,`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := ledgerEnv(t)
			e.now = time.Date(2025, 3, 1, 21, 0, 0, 0, time.UTC)
			rec := e.do("POST", "/vault/keys", tc.create)
			if rec.Code != http.StatusCreated {
				t.Fatalf("create: %d %s", rec.Code, rec.Body)
			}
			id := decodeMap(t, rec)["key_id"].(string)
			rec = e.do("PATCH", "/vault/keys/"+id, tc.patch)
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), tc.wantTotal) {
				t.Errorf("PATCH %s: %d %s; want %s", tc.patch, rec.Code, rec.Body, tc.wantTotal)
			}
		})
	}
}
