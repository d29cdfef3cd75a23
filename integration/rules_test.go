package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// TestRulesSeedStoryOncePerCustomer is the seed's failure with its
// duplicates: an upstream pagination bug turns 50 customer ids into 500,
// each customer repeated up to 20 times, and a for-each charges each id
// through stripe-go. With allow.customer the 50 and once_per customer,
// exactly 50 charges reach Stripe, one per customer; the other 450 are
// refused with X-Keybrake-Rule: once_per, in Stripe's format, and the SDK
// retries none of them.
func TestRulesSeedStoryOncePerCustomer(t *testing.T) {
	need(t, true)
	rec := newRecorder(t, env.stripeMock)
	n := startNode(t, nodeConfig{ledger: freshDatabase(t), env: map[string]string{"STRIPE_API_BASE": rec.URL}})
	label := fmt.Sprintf("windmill/seed-dupes-%d", time.Now().UnixNano())
	customers := make([]string, 50)
	for i := range customers {
		customers[i] = fmt.Sprintf("cus_Seed%02d", i)
	}
	key := issueKey(t, n, map[string]any{
		"vendor": "stripe", "total_usd_cap": 1000, "expires_in": "1h", "agent_run_label": label,
		"allowed_endpoints": []string{"POST /v1/payment_intents"},
		"rules":             map[string]any{"allow": map[string]any{"customer": customers}, "once_per": "customer"},
	})
	// 500 ids: every customer at least once, half of them 19 times, in a
	// shuffled order.
	var ids []string
	for i, c := range customers {
		for range 1 + 18*(i%2) {
			ids = append(ids, c)
		}
	}
	rand.New(rand.NewPCG(18, 500)).Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	if len(ids) != 500 {
		t.Fatalf("%d ids", len(ids))
	}
	tr := &sdkTransport{}
	retries := int64(2)
	sc := stripe.NewClient(key.VaultKey, stripe.WithBackends(stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL: stripe.String(n.url), MaxNetworkRetries: &retries, HTTPClient: tr.client(),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	})))

	var (
		mu       sync.Mutex
		charged  = map[string]int{}
		refused  int
		unwanted []error
		wg       sync.WaitGroup
		work     = make(chan string)
	)
	for range 20 { // the for-each's parallelism
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				_, err := sc.V1PaymentIntents.Create(context.Background(), &stripe.PaymentIntentCreateParams{
					Amount: stripe.Int64(1999), Currency: stripe.String("usd"), Customer: stripe.String(id)})
				mu.Lock()
				var se *stripe.Error
				switch {
				case err == nil:
					charged[id]++
				case errors.As(err, &se) && se.HTTPStatusCode == http.StatusForbidden && se.Code == "keybrake_rule_denied" &&
					se.LastResponse != nil && se.LastResponse.Header.Get("X-Keybrake-Rule") == "once_per":
					refused++
				default:
					unwanted = append(unwanted, err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	if len(unwanted) > 0 {
		t.Fatalf("%d unexpected errors; first: %v", len(unwanted), unwanted[0])
	}
	if len(charged) != 50 || refused != 450 {
		t.Fatalf("charged %d customers, refused %d; want 50 and 450", len(charged), refused)
	}
	for c, times := range charged {
		if times != 1 {
			t.Fatalf("customer %s charged %d times", c, times)
		}
	}
	if got := rec.count("POST", "/v1/payment_intents"); got != 50 {
		t.Fatalf("Stripe got %d PaymentIntent creates; want 50", got)
	}
	if got := tr.count(); got != 500 {
		t.Fatalf("stripe-go sent %d requests for 500 ids; want 500 (no retry of a refusal)", got)
	}

	// The audit records the refusals with their rule, a record a minute;
	// the summary counts refusals by rule.
	calls := audit(t, n, label)
	if groups := byOutcome(calls); len(groups["forwarded"]) != 50 || counted(groups["rule_denied"]) != 450 || len(groups["rule_denied"]) > 3 {
		t.Fatalf("audit: %d forwarded, %d rule_denied records counting %d", len(groups["forwarded"]), len(groups["rule_denied"]), counted(groups["rule_denied"]))
	}
	var s struct {
		RefusalsByRule map[string]int64 `json:"refusals_by_rule"`
	}
	if code := apiCall(t, n, "GET", "/vault/summary?agent_run_label="+label, nil, &s); code != http.StatusOK || s.RefusalsByRule["once_per"] != 450 {
		t.Fatalf("summary: %d %+v", code, s)
	}

	// GET /vault/self, with the vault key as stripe-go sends it.
	var self struct {
		KeyID     string         `json:"key_id"`
		Rules     map[string]any `json:"rules"`
		RuleCalls int64          `json:"rule_calls"`
		Remaining json.Number    `json:"remaining_usd"`
	}
	req, _ := http.NewRequest("GET", n.url+"/vault/self", nil)
	req.Header.Set("Authorization", "Bearer "+key.VaultKey)
	code := doJSON(t, req, &self)
	if code != http.StatusOK || self.KeyID != key.KeyID || self.RuleCalls != 50 || self.Rules["once_per"] != "customer" {
		t.Fatalf("GET /vault/self: %d %+v", code, self)
	}
}

// TestRulesTwilioToCountry: a Twilio vendor block's default_rules
// (to_country US) hold for a key issued without rules: twilio-go's sends to
// the US go through; to the UK, to Puerto Rico (+1 787, its own NANP
// country) and to +882 (no country) are refused with X-Keybrake-Rule:
// allow, as Twilio errors, and reach no one.
func TestRulesTwilioToCountry(t *testing.T) {
	need(t, false)
	fake := newFakeTwilio(t)
	n := startNode(t, nodeConfig{caddyfile: twilioRulesCaddyfile(t, "to_country US"), ledger: sqliteLedger(t),
		env: twilioEnv(fake)})
	label := fmt.Sprintf("n8n/to-country-%d", time.Now().UnixNano())
	key := issueKey(t, n, map[string]any{"vendor": "twilio", "total_usd_cap": 1, "agent_run_label": label,
		"allowed_endpoints": []string{"POST /2010-04-01/Accounts/*/Messages.json"}})
	tr := &sdkTransport{}
	tw := twilioClient(n.url, key.VaultKey, tr)
	send := func(to string) error {
		p := &openapi.CreateMessageParams{}
		p.SetTo(to)
		p.SetFrom("+15005550006")
		p.SetBody("Your run finished.")
		_, err := tw.Api.CreateMessage(p)
		return err
	}
	if err := send("+14155550100"); err != nil {
		t.Fatalf("a US number: %v", err)
	}
	for _, to := range []string{"+447700900123", "+17875550123", "+882123456789"} {
		err := send(to)
		var te *client.TwilioRestError
		if !errors.As(err, &te) || te.Status != http.StatusForbidden || te.Code != 20403 || !strings.Contains(te.Message, "to_country") {
			t.Fatalf("%s: err %v; want a 403 naming to_country", to, err)
		}
		if status, h := tr.last(); status != http.StatusForbidden || h.Get("X-Keybrake-Rule") != "allow" {
			t.Fatalf("%s: %d, X-Keybrake-Rule %q", to, status, h.Get("X-Keybrake-Rule"))
		}
	}
	if got := fake.count("POST", "/2010-04-01/Accounts/"+twilioRealSID+"/Messages.json"); got != 1 {
		t.Fatalf("Twilio got %d messages; want 1", got)
	}
	if tr.count() != 4 {
		t.Fatalf("twilio-go sent %d requests for 4 sends", tr.count())
	}
}

// TestRulesRateThreeNodes: rate 10/1m on one key lets exactly 10 of 100
// concurrent sends through, spread over three nodes on one Postgres
// ledger; the other 90 are 429 keybrake_rate_limited with Retry-After.
func TestRulesRateThreeNodes(t *testing.T) {
	need(t, true)
	fake := newFakeTwilio(t)
	caddyfile := twilioRulesCaddyfile(t, "")
	dsn := freshDatabase(t)
	nodes := []*node{
		startNode(t, nodeConfig{caddyfile: caddyfile, ledger: dsn, env: twilioEnv(fake)}),
		startNode(t, nodeConfig{caddyfile: caddyfile, ledger: dsn, env: twilioEnv(fake)}),
		startNode(t, nodeConfig{caddyfile: caddyfile, ledger: dsn, env: twilioEnv(fake)}),
	}
	label := fmt.Sprintf("n8n/rate-%d", time.Now().UnixNano())
	key := issueKey(t, nodes[0], map[string]any{"vendor": "twilio", "total_usd_cap": 10, "agent_run_label": label,
		"allowed_endpoints": []string{"POST /2010-04-01/Accounts/*/Messages.json"},
		"rules":             map[string]any{"rate": "10/1m"}})
	var (
		wg                  sync.WaitGroup
		mu                  sync.Mutex
		sent, limited       int
		unwanted            []error
		start               = make(chan struct{})
		retryAfterMissing   int
		retryAfterNotNumber int
	)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each send's own transport sees its own answer's headers.
			own := &sdkTransport{}
			tw := twilioClient(nodes[i%len(nodes)].url, key.VaultKey, own)
			p := &openapi.CreateMessageParams{}
			p.SetTo("+14155550100")
			p.SetFrom("+15005550006")
			p.SetBody(fmt.Sprintf("message %d", i))
			<-start
			_, err := tw.Api.CreateMessage(p)
			status, h := own.last()
			mu.Lock()
			defer mu.Unlock()
			var te *client.TwilioRestError
			switch {
			case err == nil:
				sent++
			case errors.As(err, &te) && te.Status == http.StatusTooManyRequests && status == 429 && h.Get("X-Keybrake-Rule") == "rate":
				limited++
				if h.Get("Retry-After") == "" {
					retryAfterMissing++
				} else if strings.Trim(h.Get("Retry-After"), "0123456789") != "" {
					retryAfterNotNumber++
				}
			default:
				unwanted = append(unwanted, fmt.Errorf("%v (status %d)", err, status))
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(unwanted) > 0 {
		t.Fatalf("%d unexpected errors; first: %v", len(unwanted), unwanted[0])
	}
	if sent != 10 || limited != 90 || retryAfterMissing+retryAfterNotNumber > 0 {
		t.Fatalf("sent %d, rate limited %d (Retry-After missing %d, not a number %d); want 10 and 90",
			sent, limited, retryAfterMissing, retryAfterNotNumber)
	}
	if got := fake.count("POST", "/2010-04-01/Accounts/"+twilioRealSID+"/Messages.json"); got != 10 {
		t.Fatalf("Twilio got %d messages; want 10", got)
	}
}

// twilioRulesCaddyfile is a Caddyfile with a Twilio vendor whose
// default_rules block holds the given lines.
func twilioRulesCaddyfile(t *testing.T, defaultRules string) string {
	block := ""
	if defaultRules != "" {
		block = "default_rules {\n\t\t\t\t" + defaultRules + "\n\t\t\t}"
	}
	return writeCaddyfile(t, `
		vendor twilio {
			account_sid {env.TWILIO_ACCOUNT_SID}
			auth_token {env.TWILIO_AUTH_TOKEN}
			upstream {env.TWILIO_API_BASE}
			`+block+`
		}`, `
	handle /2010-04-01/* {
		keybrake twilio
		reverse_proxy {$TWILIO_API_BASE} {
			header_up Host {upstream_hostport}
		}
	}`)
}

func twilioEnv(fake *fakeTwilio) map[string]string {
	return map[string]string{"TWILIO_ACCOUNT_SID": twilioRealSID, "TWILIO_AUTH_TOKEN": twilioRealToken, "TWILIO_API_BASE": fake.URL}
}

// doJSON sends req and decodes its JSON answer into out.
func doJSON(t *testing.T, req *http.Request, out any) int {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s %s: decoding: %v", req.Method, req.URL, err)
	}
	return resp.StatusCode
}

// TestRulesPolicyBounds: an issuer token's policy rules bound its keys: a
// key or a PATCH wider than them is 403 policy_violation naming the rule,
// a narrower one goes through, and only an admin widens a key's rules.
func TestRulesPolicyBounds(t *testing.T) {
	need(t, false)
	n := startNode(t, nodeConfig{ledger: sqliteLedger(t)})
	_, issuer := issuerToken(t, n, map[string]any{"vendors": []string{"stripe"},
		"rules": map[string]any{"max_call_usd": 50, "rate": "30/1m", "allow": map[string]any{"customer": []string{"cus_A", "cus_B"}},
			"once_per": "customer"}})
	key := func(rules map[string]any) map[string]any {
		return map[string]any{"vendor": "stripe", "total_usd_cap": 100, "allowed_endpoints": []string{"POST /v1/payment_intents"},
			"rules": rules}
	}
	narrow := map[string]any{"max_call_usd": 20, "rate": "10/1m", "allow": map[string]any{"customer": []string{"cus_A"}}, "once_per": "customer"}
	type apiErr struct {
		Error struct {
			Code, Field, Message string
		} `json:"error"`
	}
	for field, rules := range map[string]map[string]any{
		"rules.max_call_usd":   {"max_call_usd": 51, "rate": "10/1m", "allow": map[string]any{"customer": []string{"cus_A"}}, "once_per": "customer"},
		"rules.rate":           {"max_call_usd": 20, "rate": "31/1m", "allow": map[string]any{"customer": []string{"cus_A"}}, "once_per": "customer"},
		"rules.allow.customer": {"max_call_usd": 20, "rate": "10/1m", "allow": map[string]any{"customer": []string{"cus_Z"}}, "once_per": "customer"},
		"rules.once_per":       {"max_call_usd": 20, "rate": "10/1m", "allow": map[string]any{"customer": []string{"cus_A"}}},
	} {
		var e apiErr
		if code := apiCallAs(t, n, issuer, "POST", "/vault/keys", key(rules), &e); code != http.StatusForbidden ||
			e.Error.Code != "policy_violation" || e.Error.Field != field || !strings.Contains(e.Error.Message, field) {
			t.Fatalf("a key wider on %s: %d %+v", field, code, e)
		}
	}
	var k issuedKey
	if code := apiCallAs(t, n, issuer, "POST", "/vault/keys", key(narrow), &k); code != http.StatusCreated {
		t.Fatalf("a narrower key: %d", code)
	}
	var e apiErr
	if code := apiCallAs(t, n, issuer, "PATCH", "/vault/keys/"+k.KeyID, map[string]any{"rules": map[string]any{"max_call_usd": 30,
		"rate": "10/1m", "allow": map[string]any{"customer": []string{"cus_A"}}, "once_per": "customer"}}, &e); code != http.StatusForbidden ||
		e.Error.Field != "rules.max_call_usd" {
		t.Fatalf("an issuer widening its key: %d %+v", code, e)
	}
	narrow["rate"] = "5/1m"
	if code := apiCallAs(t, n, issuer, "PATCH", "/vault/keys/"+k.KeyID, map[string]any{"rules": narrow}, nil); code != http.StatusOK {
		t.Fatalf("an issuer narrowing its key: %d", code)
	}
	if code := apiCall(t, n, "PATCH", "/vault/keys/"+k.KeyID, map[string]any{"rules": map[string]any{"max_calls": 1000}}, nil); code != http.StatusOK {
		t.Fatalf("an admin widening a key: %d", code)
	}
}

// TestRulesOncePerChargeInSteps: once_per customer counts charges, not
// calls. Through stripe-go, on a real node in front of the simulated
// Stripe, on both ledgers: an intent created without confirming and then
// confirmed, and one authorised (manual capture) and then captured, each
// charge their customer once; a second intent for either customer is
// refused with X-Keybrake-Rule: once_per, and so is a confirm of an intent
// the key did not create for a customer it has charged.
func TestRulesOncePerChargeInSteps(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			sim := newSim()
			c := startCapNode(t, sim, ledgerOfKind(t, kind))
			key := issueKey(t, c.n, map[string]any{
				"vendor": "stripe", "total_usd_cap": 1000, "expires_in": "1h", "agent_run_label": "rules/steps-" + kind,
				"allowed_endpoints": []string{"POST /v1/payment_intents", "POST /v1/payment_intents/*/confirm",
					"POST /v1/payment_intents/*/capture"},
				"rules": map[string]any{"allow": map[string]any{"customer": []string{"cus_Two", "cus_Auth"}}, "once_per": "customer"},
			})
			sc := stripeClient(c.n, key.VaultKey, "")
			ctx := context.Background()
			wantOncePer := func(what string, err error) {
				t.Helper()
				var se *stripe.Error
				if !errors.As(err, &se) || se.HTTPStatusCode != http.StatusForbidden || se.LastResponse == nil ||
					se.LastResponse.Header.Get("X-Keybrake-Rule") != "once_per" {
					t.Fatalf("%s: %v; want 403 with X-Keybrake-Rule: once_per", what, err)
				}
			}

			// Created, then confirmed.
			pi, err := sc.V1PaymentIntents.Create(ctx, &stripe.PaymentIntentCreateParams{
				Amount: stripe.Int64(2000), Currency: stripe.String("usd"), Customer: stripe.String("cus_Two")})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			pi, err = sc.V1PaymentIntents.Confirm(ctx, pi.ID, &stripe.PaymentIntentConfirmParams{
				PaymentMethod: stripe.String("pm_card_visa")})
			if err != nil || pi.Status != stripe.PaymentIntentStatusSucceeded {
				t.Fatalf("confirm of the key's own intent: %v %+v", err, pi)
			}
			_, err = sc.V1PaymentIntents.Create(ctx, &stripe.PaymentIntentCreateParams{
				Amount: stripe.Int64(2000), Currency: stripe.String("usd"), Customer: stripe.String("cus_Two"),
				PaymentMethod: stripe.String("pm_card_visa"), Confirm: stripe.Bool(true)})
			wantOncePer("a second intent for cus_Two", err)

			// Authorised, then captured.
			auth, err := sc.V1PaymentIntents.Create(ctx, &stripe.PaymentIntentCreateParams{
				Amount: stripe.Int64(3000), Currency: stripe.String("usd"), Customer: stripe.String("cus_Auth"),
				PaymentMethod: stripe.String("pm_card_visa"), Confirm: stripe.Bool(true),
				CaptureMethod: stripe.String("manual")})
			if err != nil || auth.Status != stripe.PaymentIntentStatusRequiresCapture {
				t.Fatalf("authorisation: %v %+v", err, auth)
			}
			auth, err = sc.V1PaymentIntents.Capture(ctx, auth.ID, nil)
			if err != nil || auth.Status != stripe.PaymentIntentStatusSucceeded {
				t.Fatalf("capture of the key's own authorisation: %v %+v", err, auth)
			}

			// An intent for cus_Auth made elsewhere (the simulated account,
			// with the real secret) is a second charge of that customer.
			req := httptest.NewRequest("POST", "/v1/payment_intents", strings.NewReader(form(
				"amount", "1000", "currency", "usd", "customer", "cus_Auth")))
			req.Header = formHeader()
			req.Header.Set("Authorization", "Bearer "+simStripeSecret)
			rec := httptest.NewRecorder()
			sim.Stripe().ServeHTTP(rec, req)
			var made struct{ ID string }
			if err := json.Unmarshal(rec.Body.Bytes(), &made); rec.Code != http.StatusOK || err != nil || made.ID == "" {
				t.Fatalf("creating an intent at the simulated Stripe: %d %s", rec.Code, rec.Body)
			}
			_, err = sc.V1PaymentIntents.Confirm(ctx, made.ID, &stripe.PaymentIntentConfirmParams{
				PaymentMethod: stripe.String("pm_card_visa")})
			wantOncePer("a confirm of another intent for cus_Auth", err)

			// Each customer was charged once, in full.
			if got := sim.Moved("stripe"); got != 50_000_000 {
				t.Fatalf("Stripe moved %d micro-dollars; want $50 (20 + 30)", got)
			}
		})
	}
}
