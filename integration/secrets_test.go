package integration

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestSecretsNeverLeak: the vault key never reaches the vendor, the real
// secret is what arrives, and the real secret appears in no response, no
// log line and no database row; the vault key is stored only as a hash.
func TestSecretsNeverLeak(t *testing.T) {
	need(t, true)
	dsn := freshDatabase(t)
	rec := newRecorder(t, env.stripeMock)
	n := startNode(t, nodeConfig{ledger: dsn, env: map[string]string{"STRIPE_API_BASE": rec.URL}})

	var issueBody strings.Builder
	key := issueKey(t, n, map[string]any{
		"vendor":            "stripe",
		"total_usd_cap":     20,
		"allowed_endpoints": []string{"POST /v1/payment_intents", "GET /v1/customers/*"},
		"agent_run_label":   "secrets",
	})
	_ = issueBody
	var responses []string
	record := func(method, path, auth, body string, extra map[string]string) {
		req, _ := http.NewRequest(method, n.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		if body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for k, v := range extra {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var hdr strings.Builder
		_ = resp.Header.Write(&hdr)
		responses = append(responses, hdr.String()+string(b))
	}
	// Forwarded calls, with the vault key in every place a client might put
	// it, plus Keybrake headers that must not travel upstream.
	record("POST", "/stripe/v1/payment_intents", "Bearer "+key.VaultKey, "amount=100&currency=usd", map[string]string{"X-Keybrake-Debug": key.VaultKey})
	record("POST", "/v1/payment_intents", "Bearer "+key.VaultKey, "amount=100&currency=usd", nil)
	record("GET", "/v1/customers/cus_123", "Bearer "+key.VaultKey, "", nil)
	// Refused calls of every kind.
	record("POST", "/v1/payouts", "Bearer "+key.VaultKey, "amount=100&currency=usd", nil)
	record("POST", "/v1/payment_intents", "Bearer "+key.VaultKey, "amount=999999&currency=usd", nil)
	record("POST", "/v1/payment_intents", "Bearer "+realSecret, "amount=100&currency=usd", nil)
	record("POST", "/v1/payment_intents", "Bearer kbNoSuchKey000000000000000000000", "amount=100&currency=usd", nil)

	if got := rec.total(); got != 3 {
		t.Fatalf("upstream saw %d calls; want 3", got)
	}
	for _, q := range rec.requests() {
		if q.Header.Get("Authorization") != "Bearer "+realSecret {
			t.Fatalf("upstream Authorization = %q; want the real secret", q.Header.Get("Authorization"))
		}
		for name := range q.Header {
			if strings.HasPrefix(strings.ToLower(name), "x-keybrake-") {
				t.Fatalf("a Keybrake header reached the vendor: %s", name)
			}
		}
	}
	if rec.anyContains(key.VaultKey) {
		t.Fatal("the vault key reached the vendor")
	}
	for _, r := range responses {
		if strings.Contains(r, realSecret) {
			t.Fatalf("the real secret appeared in a response: %s", r)
		}
	}
	// Key API answers: the secret is shown once, at issue, and never again.
	var view, list map[string]any
	apiCall(t, n, "GET", "/vault/keys/"+key.KeyID, nil, &view)
	apiCall(t, n, "GET", "/vault/keys?agent_run_label=secrets", nil, &list)
	for _, v := range []map[string]any{view, list} {
		s := toJSON(v)
		if strings.Contains(s, key.VaultKey) || strings.Contains(s, realSecret) {
			t.Fatalf("key API leaks a secret: %s", s)
		}
	}
	logs := n.log(t)
	if strings.Contains(logs, realSecret) || strings.Contains(logs, key.VaultKey) || strings.Contains(logs, apiToken) {
		t.Fatal("a secret appeared in Caddy's log")
	}
	if !strings.Contains(logs, key.KeyID) {
		t.Fatal("the log does not mention the key id at all: the leak check would prove nothing")
	}

	// Metrics: Keybrake's counters are in Caddy's registry, labelled by
	// vendor and outcome only.
	m := n.adminGet(t, "/metrics")
	if !strings.Contains(m, `keybrake_calls_total{decision="settle",outcome="forwarded",vendor="stripe"} 3`) ||
		!strings.Contains(m, `keybrake_spent_microdollars_total{vendor="stripe"} 2e+06`) {
		t.Fatalf("keybrake metrics missing or wrong:\n%s", grepLines(m, "keybrake_"))
	}
	if strings.Contains(m, realSecret) || strings.Contains(m, key.VaultKey) || strings.Contains(m, key.KeyID) || strings.Contains(m, "secrets") {
		t.Fatal("a secret, key id or run label appeared in the metrics")
	}

	// Every row of every table, as text.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tables := publicTables(t, dsn)
	if len(tables) < 3 {
		t.Fatalf("found only tables %v", tables)
	}
	var dump strings.Builder
	for _, table := range tables {
		rows, err := conn.Query(ctx, `SELECT t::text FROM `+pgx.Identifier{table}.Sanitize()+` t`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var line string
			_ = rows.Scan(&line)
			dump.WriteString(line + "\n")
		}
		rows.Close()
	}
	d := dump.String()
	if strings.Contains(d, realSecret) || strings.Contains(d, key.VaultKey) || strings.Contains(d, apiToken) {
		t.Fatal("a secret is stored in the database")
	}
	if !strings.Contains(d, key.KeyID) {
		t.Fatal("the dump does not hold the key id: the check would prove nothing")
	}
}

// publicTables lists the tables of a Postgres database's public schema.
func publicTables(t *testing.T, dsn string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return tables
}
