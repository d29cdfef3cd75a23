package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/internal/text"
	"github.com/keybrake/keybrake/money"
)

// TestPricingAtTheEdges sends each vendor's priced fields at the edges of
// what the vendor documents (empty, smallest, largest, one more) through
// the gate to the simulated vendors, and checks what docs/vendors.md says:
// the status, what the ledger counted and what the vendor moved. A call the
// vendor refuses moves nothing and is released; a call Keybrake cannot
// price is refused before it reaches the vendor.
func TestPricingAtTheEdges(t *testing.T) {
	sim := newSim()
	l := newCapLocal(t, "sqlite:"+t.TempDir()+"/ledger.db", sim, simVendors(t))
	type edge struct {
		name    string
		vendor  string
		req     capRequest
		status  int
		counted money.Micros // what the ledger counts after the call
		moved   money.Micros // what the vendor moved
	}
	pi := func(amount, currency string) capRequest {
		return stripePost("/v1/payment_intents", form("amount", amount, "currency", currency, "confirm", "true", "payment_method", "pm_card_visa"))
	}
	msg := func(kv ...string) capRequest {
		return twilioPost("Messages.json", form(append([]string{"To", "+15005550006", "From", "+15005550001"}, kv...)...))
	}
	media := func(n int) []string {
		var kv []string
		for range n {
			kv = append(kv, "MediaUrl", "https://example.com/p.png")
		}
		return kv
	}
	call := func(limit string) capRequest {
		return twilioPost("Calls.json", form("To", "+15005550006", "From", "+15005550001", "Url", "https://example.com/t.xml", "TimeLimit", limit))
	}
	to := func(n int, asString bool) capRequest {
		addrs := make([]string, n)
		for i := range addrs {
			addrs[i] = fmt.Sprintf("r%d@example.com", i)
		}
		field := `["` + strings.Join(addrs, `","`) + `"]`
		if asString {
			field = `"` + strings.Join(addrs, ", ") + `"`
		}
		return resendPost("/emails", `{"from":"a@example.com","to":`+field+`,"subject":"s","html":"x"}`)
	}
	batch := func(n int) capRequest {
		one := `{"from":"a@example.com","to":"b@example.com","subject":"s","html":"x"}`
		return resendPost("/emails/batch", "["+strings.TrimSuffix(strings.Repeat(one+",", n), ",")+"]")
	}
	a := strings.Repeat
	const seg, mms, minute, email = 8_300, 22_000, 14_000, 900
	edges := []edge{
		// Stripe: amounts in minor units, 1 to 99,999,999 (eight digits);
		// Stripe's $0.50 minimum is the vendor's to enforce.
		{"amount 0", "stripe", pi("0", "usd"), 400, 0, 0},
		{"amount 1", "stripe", pi("1", "usd"), 200, 10_000, 10_000},
		{"amount 49, below the minimum charge", "stripe", pi("49", "usd"), 200, 490_000, 490_000},
		{"amount 50", "stripe", pi("50", "usd"), 200, 500_000, 500_000},
		{"amount 99,999,999", "stripe", pi("99999999", "usd"), 200, 999_999_990_000, 999_999_990_000},
		{"amount 100,000,000", "stripe", pi("100000000", "usd"), 400, 0, 0},
		{"amount with a sign", "stripe", pi("+50", "usd"), 200, 500_000, 500_000},
		{"amount with leading zeros", "stripe", pi("0050", "usd"), 200, 500_000, 500_000},
		{"negative amount", "stripe", pi("-1", "usd"), 400, 0, 0},
		{"decimal amount", "stripe", pi("1.5", "usd"), 400, 0, 0},
		{"amount past int64", "stripe", pi("9223372036854775808", "usd"), 400, 0, 0},
		{"USD in capitals", "stripe", pi("50", "USD"), 200, 500_000, 500_000},
		{"zero-decimal: ¥50", "stripe", pi("50", "jpy"), 200, 335_000, 335_000},
		{"three-decimal: 50 fils", "stripe", pi("50", "kwd"), 200, 162_500, 162_500},
		{"three-decimal: 99,999,999 fils", "stripe", pi("99999999", "kwd"), 200, 324_999_996_750, 324_999_996_750},
		{"a currency with no rate", "stripe", pi("50", "eur"), 400, 0, 0},
		{"no currency", "stripe", pi("50", ""), 400, 0, 0},
		// Twilio: Body up to 1,600 characters, 0 to 10 MediaUrl.
		{"empty body, no media", "twilio", msg("Body", ""), 400, 0, 0},
		{"one character", "twilio", msg("Body", "a"), 201, seg, seg},
		{"1,600 GSM-7 characters", "twilio", msg("Body", a("a", 1600)), 201, 11 * seg, 11 * seg},
		{"1,601 characters", "twilio", msg("Body", a("a", 1601)), 400, 0, 0},
		{"1,600 UCS-2 characters", "twilio", msg("Body", a("ж", 1600)), 201, 24 * seg, 24 * seg},
		{"800 emoji, 1,600 code units", "twilio", msg("Body", a("😀", 800)), 201, 25 * seg, 25 * seg},
		{"the issue 21 body", "twilio", msg("Body", a("a", 66)+"e\u0301"+a("a", 66)), 201, 3 * seg, 3 * seg},
		// A character longer than a segment: Twilio's calculator has no
		// count Twilio could send, so Keybrake refuses it (unknown cost).
		{"a character longer than a segment", "twilio", msg("Body", "e"+a("\u0301", 80)), 403, 0, 0},
		{"one MediaUrl, no body", "twilio", msg(media(1)...), 201, mms, mms},
		// Ten links of 48 characters as SMS, should the MMS Converter send
		// it as SMS: 480 characters, 4 segments, counted until Twilio's
		// price comes.
		{"ten MediaUrl", "twilio", msg(media(10)...), 201, 4 * seg, mms},
		{"eleven MediaUrl", "twilio", msg(media(11)...), 400, 0, 0},
		// Calls: TimeLimit in started minutes.
		{"TimeLimit 0", "twilio", call("0"), 400, 0, 0},
		{"TimeLimit 1", "twilio", call("1"), 201, minute, minute},
		{"TimeLimit 60", "twilio", call("60"), 201, minute, minute},
		{"TimeLimit 61", "twilio", call("61"), 201, 2 * minute, 2 * minute},
		{"TimeLimit 14,400", "twilio", call("14400"), 201, 240 * minute, 240 * minute},
		{"TimeLimit 14,401", "twilio", call("14401"), 201, 241 * minute, 240 * minute},
		{"TimeLimit not a number", "twilio", call("abc"), 400, 0, 0},
		// Resend: 1 to 50 addresses in to; a batch of 1 to 100 emails.
		{"no recipient", "resend", to(0, true), 403, 0, 0},
		{"one recipient", "resend", to(1, false), 200, email, email},
		{"50 recipients", "resend", to(50, false), 200, 50 * email, 50 * email},
		{"50 recipients in one string", "resend", to(50, true), 200, 50 * email, 50 * email},
		{"51 recipients", "resend", to(51, false), 422, 0, 0},
		{"empty batch", "resend", resendPost("/emails/batch", "[]"), 403, 0, 0},
		{"batch of one", "resend", batch(1), 200, email, email},
		{"batch of 100", "resend", batch(100), 200, 100 * email, 100 * email},
		{"batch of 101", "resend", batch(101), 422, 0, 0},
	}
	for _, e := range edges {
		sim.Reset()
		k := l.issue(t, capSpec{vendor: e.vendor, total: usdOf("2000000"), endpoint: allEndpoints(e.vendor)})
		r := l.do(t, k, e.req)
		counted, moved := l.counted(t, k), money.Micros(sim.Moved(e.vendor))
		if r.status != e.status || counted != e.counted || moved != e.moved {
			t.Errorf("%s %s: %d, counted %s, moved %s; want %d, counted %s, moved %s (%s)",
				e.vendor, e.name, r.status, counted, moved, e.status, e.counted, e.moved, text.Truncate(r.body, 200))
		}
	}
}
