package simvendor

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resend/resend-go/v3"
)

func resendSDK(e *env, key string) *resend.Client {
	c := resend.NewCustomClient(&http.Client{}, key)
	c.BaseURL, _ = url.Parse(e.resend.URL + "/")
	return c
}

func TestResendSDKSendAndBatch(t *testing.T) {
	e := newEnv(t)
	rc := resendSDK(e, testResendKey)
	sent, err := rc.Emails.SendWithOptions(context.Background(), &resend.SendEmailRequest{
		From: "Acme <ops@acme.test>", To: []string{"a@x.test", "b@x.test"}, Cc: []string{"c@x.test"},
		Bcc: []string{"d@x.test"}, Subject: "hi", Text: "hello",
	}, &resend.SendEmailOptions{IdempotencyKey: "welcome/1"})
	if err != nil {
		t.Fatal(err)
	}
	if sent.Id == "" {
		t.Fatal("no id")
	}
	wantMoved(t, e.sim, VendorResend, 4*DefaultEmailPrice)
	again, err := rc.Emails.SendWithOptions(context.Background(), &resend.SendEmailRequest{
		From: "Acme <ops@acme.test>", To: []string{"a@x.test", "b@x.test"}, Cc: []string{"c@x.test"},
		Bcc: []string{"d@x.test"}, Subject: "hi", Text: "hello",
	}, &resend.SendEmailOptions{IdempotencyKey: "welcome/1"})
	if err != nil || again.Id != sent.Id {
		t.Fatalf("replay: %v %v", again, err)
	}
	wantMoved(t, e.sim, VendorResend, 4*DefaultEmailPrice)
	_, err = rc.Emails.SendWithOptions(context.Background(), &resend.SendEmailRequest{
		From: "ops@acme.test", To: []string{"z@x.test"}, Subject: "other", Text: "x",
	}, &resend.SendEmailOptions{IdempotencyKey: "welcome/1"})
	if err == nil || !strings.Contains(err.Error(), "different request payload") {
		t.Fatalf("changed payload: %v", err)
	}

	batch, err := rc.Batch.Send([]*resend.SendEmailRequest{
		{From: "ops@acme.test", To: []string{"a@x.test"}, Subject: "1", Text: "1"},
		{From: "ops@acme.test", To: []string{"b@x.test", "c@x.test"}, Subject: "2", Text: "2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(batch.Data) != 2 {
		t.Fatalf("batch %+v", batch)
	}
	wantMoved(t, e.sim, VendorResend, 7*DefaultEmailPrice)

	_, err = resendSDK(e, "re_wrong").Emails.Send(&resend.SendEmailRequest{From: "a@x.test", To: []string{"b@x.test"}, Subject: "s"})
	if err == nil || !strings.Contains(err.Error(), "API key is invalid") {
		t.Fatalf("wrong key: %v", err)
	}
	wantMoved(t, e.sim, VendorResend, 7*DefaultEmailPrice)
}

func TestResendRecipientsAndErrors(t *testing.T) {
	e := newEnv(t)
	r := e.resendReq(t, http.MethodPost, "/emails", `{"from":"a@x.test","to":"b@x.test, c@x.test,d@x.test","subject":"s","text":"t"}`)
	wantStatus(t, r, 200)
	wantMoved(t, e.sim, VendorResend, 3*DefaultEmailPrice)

	r = e.resendReq(t, http.MethodPost, "/emails", `to=b@x.test&to=c@x.test&from=a@x.test&subject=s`, "Content-Type", "application/x-www-form-urlencoded")
	wantStatus(t, r, 200)
	wantMoved(t, e.sim, VendorResend, 5*DefaultEmailPrice)

	r = e.resendReq(t, http.MethodPost, "/emails", `{"from":"a@x.test","to":`)
	wantStatus(t, r, 400)
	if r.str("name") != "validation_error" || r.num("statusCode") != 400 {
		t.Fatalf("not JSON: %s", r.raw)
	}
	r = e.resendReq(t, http.MethodPost, "/emails", `{"from":"a@x.test","subject":"s"}`)
	wantStatus(t, r, 422)
	if r.str("name") != "missing_required_field" {
		t.Fatalf("missing to: %s", r.raw)
	}
	many := make([]string, 51)
	for i := range many {
		many[i] = `"u` + itoa(int64(i)) + `@x.test"`
	}
	wantStatus(t, e.resendReq(t, http.MethodPost, "/emails", `{"from":"a@x.test","subject":"s","to":[`+strings.Join(many, ",")+`]}`), 422)
	wantStatus(t, e.resendReq(t, http.MethodPost, "/emails", `{"from":"a@x.test","subject":"s","to":"not an address"}`), 422)

	req, _ := http.NewRequest(http.MethodPost, e.resend.URL+"/emails", strings.NewReader(`{}`))
	r = do(t, req)
	wantStatus(t, r, 401)
	if r.str("name") != "missing_api_key" || r.num("statusCode") != 401 {
		t.Fatalf("no key: %s", r.raw)
	}
	r = e.resendReq(t, http.MethodPost, "/emails", `{}`, "Authorization", "Bearer re_nope")
	wantStatus(t, r, 403)
	if r.str("name") != "invalid_api_key" {
		t.Fatalf("wrong key: %s", r.raw)
	}
	wantMoved(t, e.sim, VendorResend, 5*DefaultEmailPrice)
}

func TestResendBatchValidation(t *testing.T) {
	e := newEnv(t)
	body := `[{"from":"a@x.test","to":"b@x.test","subject":"1"},{"from":"a@x.test","subject":"2"}]`
	wantStatus(t, e.resendReq(t, http.MethodPost, "/emails/batch", body), 422)
	wantMoved(t, e.sim, VendorResend, 0)
	r := e.resendReq(t, http.MethodPost, "/emails/batch", body, "x-batch-validation", "permissive")
	wantStatus(t, r, 200)
	if len(r.get("data").([]any)) != 1 || len(r.get("errors").([]any)) != 1 {
		t.Fatalf("permissive: %s", r.raw)
	}
	wantMoved(t, e.sim, VendorResend, DefaultEmailPrice)
	items := make([]string, 101)
	for i := range items {
		items[i] = `{"from":"a@x.test","to":"b@x.test","subject":"s"}`
	}
	wantStatus(t, e.resendReq(t, http.MethodPost, "/emails/batch", "["+strings.Join(items, ",")+"]"), 422)
	wantStatus(t, e.resendReq(t, http.MethodPost, "/emails/batch", "["+strings.Join(items[:100], ",")+"]"), 200)
	wantMoved(t, e.sim, VendorResend, 101*DefaultEmailPrice)
}

func TestResendIdempotency(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e := newEnv(t, func(c *Config) {
		c.BeforeExecute = func(vendor string, r *http.Request) {
			if r.Header.Get("Idempotency-Key") == "slow" {
				once.Do(func() { close(entered); <-release })
			}
		}
	})
	one := `{"from":"a@x.test","to":["b@x.test"],"subject":"s"}`
	first := e.resendReq(t, http.MethodPost, "/emails", one, "Idempotency-Key", "k")
	wantStatus(t, first, 200)
	// Same payload with other whitespace and key order is the same request.
	same := e.resendReq(t, http.MethodPost, "/emails", `{ "subject":"s", "to":["b@x.test"], "from":"a@x.test" }`, "Idempotency-Key", "k")
	if same.raw != first.raw {
		t.Fatalf("replay: %s vs %s", same.raw, first.raw)
	}
	diff := e.resendReq(t, http.MethodPost, "/emails", `{"from":"a@x.test","to":["c@x.test"],"subject":"s"}`, "Idempotency-Key", "k")
	wantStatus(t, diff, 409)
	if diff.str("name") != "invalid_idempotent_request" {
		t.Fatalf("diff: %s", diff.raw)
	}
	batch := e.resendReq(t, http.MethodPost, "/emails/batch", "["+one+"]", "Idempotency-Key", "k")
	wantStatus(t, batch, 409)
	wantStatus(t, e.resendReq(t, http.MethodPost, "/emails", one, "Idempotency-Key", strings.Repeat("k", 257)), 400)
	wantMoved(t, e.sim, VendorResend, DefaultEmailPrice)

	done := make(chan resp)
	go func() { done <- e.resendReq(t, http.MethodPost, "/emails", one, "Idempotency-Key", "slow") }()
	<-entered
	conc := e.resendReq(t, http.MethodPost, "/emails", one, "Idempotency-Key", "slow")
	wantStatus(t, conc, 409)
	if conc.str("name") != "concurrent_idempotent_requests" {
		t.Fatalf("concurrent: %s", conc.raw)
	}
	close(release)
	wantStatus(t, <-done, 200)
	wantMoved(t, e.sim, VendorResend, 2*DefaultEmailPrice)

	e.clock.Advance(24 * time.Hour)
	wantStatus(t, e.resendReq(t, http.MethodPost, "/emails", `{"from":"a@x.test","to":["c@x.test"],"subject":"s"}`, "Idempotency-Key", "k"), 200)
	wantMoved(t, e.sim, VendorResend, 3*DefaultEmailPrice)
}

func TestResendAPIKeys(t *testing.T) {
	e := newEnv(t)
	rc := resendSDK(e, testResendKey)
	k, err := rc.ApiKeys.Create(&resend.CreateApiKeyRequest{Name: "agent"})
	if err != nil {
		t.Fatal(err)
	}
	if k.Token == "" || !strings.HasPrefix(k.Token, "re_") {
		t.Fatalf("key %+v", k)
	}
	if _, err := resendSDK(e, k.Token).Emails.Send(&resend.SendEmailRequest{From: "a@x.test", To: []string{"b@x.test"}, Subject: "s"}); err != nil {
		t.Fatal(err)
	}
	sending, err := rc.ApiKeys.Create(&resend.CreateApiKeyRequest{Name: "send", Permission: "sending_access"})
	if err != nil {
		t.Fatal(err)
	}
	r := e.resendReq(t, http.MethodPost, "/api-keys", `{"name":"x"}`, "Authorization", "Bearer "+sending.Token)
	wantStatus(t, r, 401)
	if r.str("name") != "restricted_api_key" {
		t.Fatalf("restricted: %s", r.raw)
	}
	evs := e.sim.Events()
	if evs[0].Kind != KindCredentialMinted || evs[0].Secret != k.Token {
		t.Fatalf("events %+v", evs)
	}
}
