package integration

import (
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/keybrake/keybrake/integration/simvendor"
	"github.com/keybrake/keybrake/internal/graphemesplitter"
	"github.com/keybrake/keybrake/internal/text"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
	"github.com/keybrake/keybrake/vendors/twilio"
)

// The model's liveness: an honest call the cap admits goes through and
// moves money, and the model fails when the gate is broken on purpose.

// honest opens a sequence with an honest call the key's cap admits, and
// requires it to succeed and move exactly its price at the vendor.
func (s *capSeq) honest() {
	var req capRequest
	var price money.Micros
	switch s.vendor {
	case "stripe":
		// Stripe's minimum charge is $0.50; a smaller cap admits none.
		capCents := int64(s.cap) / 10_000
		if capCents < 50 {
			return
		}
		amount := 50 + s.rng.Int64N(min(capCents, 99_999_999)-50+1)
		req = stripePost("/v1/payment_intents", form("amount", itoa(amount), "currency", "usd", "confirm", "true",
			"payment_method", "pm_card_visa"))
		price = money.Micros(amount * 10_000)
	case "twilio":
		body := smsBody(s.rng)
		segs, _ := simvendor.SMSSegments(body)
		if body == "" || len([]rune(body)) > 1600 || money.Micros(int64(segs)*simvendor.DefaultSMSPrice) > s.cap || hasLongCharacter(body) {
			body, segs = "honest "+itoa(s.rng.Int64N(1000)), 1
		}
		req = twilioPost("Messages.json", form("To", "+1500555"+strconv.Itoa(1000+s.rng.IntN(9000)), "From", "+15005550001", "Body", body))
		price = money.Micros(int64(segs) * simvendor.DefaultSMSPrice)
	case "resend":
		n := 1 + s.rng.Int64N(min(int64(s.cap)/simvendor.DefaultEmailPrice, 50))
		addrs := make([]string, n)
		for i := range addrs {
			addrs[i] = "h" + strconv.Itoa(i) + "@example.com"
		}
		req = resendPost("/emails", `{"from":"a@example.com","to":["`+strings.Join(addrs, `","`)+`"],"subject":"s","html":"x"}`)
		price = money.Micros(n * simvendor.DefaultEmailPrice)
	default:
		return
	}
	s.honestSent = true
	r := s.do(req)
	if r.status/100 != 2 {
		s.t.Errorf("an honest call the cap admits (%s, cap %s) was refused: %s", price, s.cap, r)
		return
	}
	if moved := money.Micros(s.sim.Moved(s.vendor)); moved != price {
		s.t.Errorf("an honest call priced %s moved %s at the vendor", price, moved)
	}
}

// hasLongCharacter: body has a character of more than 30 UTF-16 code
// units, which can overfill a segment in Twilio's calculator (Keybrake
// refuses such a message as of unknown cost; no honest SMS has one).
func hasLongCharacter(body string) bool {
	for _, g := range graphemesplitter.Split(body) {
		if len(utf16.Encode([]rune(g))) > 30 {
			return true
		}
	}
	return false
}

// Ways to break the gate on purpose (KEYBRAKE_CAP_BREAK), for
// TestCapModelFailsWhenBroken: the model must catch each.
const (
	// capBreakRefuseAll: the gate refuses every call (every estimate is
	// of unknown cost, which the default policy refuses).
	capBreakRefuseAll = "refuse-all"
	// capBreakCodePoints: Twilio's SMS are priced per code point, as
	// Keybrake did before issue 21, not per character.
	capBreakCodePoints = "code-point-segments"
)

var capBreak = os.Getenv("KEYBRAKE_CAP_BREAK")

// capBroken wraps the model's vendors as KEYBRAKE_CAP_BREAK asks.
func capBroken(t testing.TB, vendorsFor func(map[string]*http.Client) map[string]vendors.Vendor) func(map[string]*http.Client) map[string]vendors.Vendor {
	switch capBreak {
	case "":
		return vendorsFor
	case capBreakRefuseAll, capBreakCodePoints:
	default:
		t.Fatalf("KEYBRAKE_CAP_BREAK=%q: want %s or %s", capBreak, capBreakRefuseAll, capBreakCodePoints)
	}
	return func(c map[string]*http.Client) map[string]vendors.Vendor {
		vs := vendorsFor(c)
		for name, v := range vs {
			if capBreak == capBreakRefuseAll {
				vs[name] = refusingVendor{v}
			} else if tw, ok := v.(*twilio.Vendor); ok {
				vs[name] = codePointTwilio{tw}
			}
		}
		return vs
	}
}

// refusingVendor prices nothing: the gate refuses every call.
type refusingVendor struct{ vendors.Vendor }

func (refusingVendor) Estimate(*http.Request, []byte) (vendors.Estimate, error) {
	return vendors.Estimate{Reason: "a gate broken on purpose refuses every call"}, nil
}

// codePointTwilio prices an SMS by code point segments.
type codePointTwilio struct{ *twilio.Vendor }

var twilioMessageCreate = regexp.MustCompile(`(?i)/messages(\.json|\.xml)?/?$`)

func (v codePointTwilio) Estimate(r *http.Request, body []byte) (vendors.Estimate, error) {
	est, err := v.Vendor.Estimate(r, body)
	if err != nil || !est.Known || est.Cost == 0 || r.Method != http.MethodPost || !twilioMessageCreate.MatchString(r.URL.Path) {
		return est, err
	}
	f, perr := url.ParseQuery(string(body))
	if perr != nil || f.Has("MediaUrl") || f.Has("SendAsMms") {
		return est, err
	}
	real, _ := twilio.Segments(f.Get("Body"))
	est.Cost = est.Cost / money.Micros(real) * money.Micros(codePointSegments(f.Get("Body")))
	return est, err
}

// codePointSegments is Keybrake's segment count before issue 21: per code
// point, never splitting a surrogate pair, but splitting characters made
// of several code points.
func codePointSegments(body string) int {
	gsm := true
	var widths []int
	for _, c := range body {
		w := 1
		if strings.ContainsRune("\f^{}\\[~]|€", c) {
			w = 2
		} else if !strings.ContainsRune(string(smsGSMBasic), c) {
			gsm = false
		}
		widths = append(widths, w)
	}
	single, multi := 160, 153
	if !gsm {
		single, multi = 70, 67
		for i, c := range []rune(body) {
			widths[i] = len(utf16.Encode([]rune{c}))
		}
	}
	total := 0
	for _, w := range widths {
		total += w
	}
	if total <= single {
		return 1
	}
	segs, used := 1, 0
	for _, w := range widths {
		if used+w > multi {
			segs++
			used = 0
		}
		used += w
	}
	return segs
}

// TestCapModelFailsWhenBroken runs the model (TestCapModel, embedded
// ledger) in a child process with the gate broken on purpose, and requires
// it to fail for the reason the break causes: a gate that refuses every
// call fails the honest opener; SMS priced per code point is caught when
// the simulated Twilio moves more than the ledger counted. The sequences up
// to the one that failed then pass in this process on the gate as it is.
func TestCapModelFailsWhenBroken(t *testing.T) {
	if capBreak != "" {
		t.Skip("this is a child run of the self-test")
	}
	const seed = 2100
	cases := []struct{ mode, want string }{
		{capBreakRefuseAll, "an honest call the cap admits"},
		{capBreakCodePoints, "ledger counted"},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestCapModel$/^sqlite$", "-test.count=1", "-test.v", "-test.timeout=10m")
			cmd.Env = append(os.Environ(), "KEYBRAKE_CAP_BREAK="+c.mode, "KEYBRAKE_CAP_SEQUENCES=2000",
				"KEYBRAKE_CAP_SEED="+strconv.Itoa(seed))
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the model passed with the gate broken (%s):\n%s", c.mode, text.Truncate(string(out), 2000))
			}
			if !strings.Contains(string(out), c.want) {
				t.Fatalf("the model failed with the gate broken (%s), but not with %q:\n%s", c.mode, c.want, text.Truncate(string(out), 4000))
			}
			m := regexp.MustCompile(`sequence with seed (\d+) failed`).FindStringSubmatch(string(out))
			if m == nil {
				t.Fatalf("no failing seed in the output:\n%s", text.Truncate(string(out), 4000))
			}
			failed, _ := strconv.Atoi(m[1])
			t.Logf("broken on purpose (%s): the model failed at sequence %d with %q", c.mode, failed-seed+1, c.want)
			// The same sequences pass on the gate as it is.
			runCapModel(t, "sqlite:"+filepath.Join(t.TempDir(), "ledger.db"), seed, failed-seed+1, "KEYBRAKE_CAP_SEED")
		})
	}
}
