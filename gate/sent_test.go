package gate

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// transportTo is a next handler that forwards with a real http.Transport
// (no connection reuse) to url, the way reverse_proxy does.
func transportTo(url string) Next {
	tr := &http.Transport{DisableKeepAlives: true}
	return func(w http.ResponseWriter, r *http.Request) error {
		out, err := http.NewRequestWithContext(r.Context(), r.Method, url+r.URL.Path, r.Body)
		if err != nil {
			return err
		}
		out.Header = r.Header.Clone()
		resp, err := tr.RoundTrip(out)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		return nil
	}
}

// dialOpError stands for Caddy's reverseproxy.DialError in these tests.
func dialOpError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestGateNothingSentIsReleasedAndSafeToRetry(t *testing.T) {
	// A plain HTTP server answering a TLS client: the handshake fails.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the request reached the server")
	}))
	defer plain.Close()
	for name, next := range map[string]Next{
		"connection refused":   transportTo("http://" + closedPort(t)),
		"tls handshake failed": transportTo("https://" + strings.TrimPrefix(plain.URL, "http://")),
		"name not resolved": func(http.ResponseWriter, *http.Request) error {
			return &net.OpError{Op: "dial", Err: errors.New("no such host")}
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newGTFixture(t, "10")
			f.gate.cfg.DialFailed = dialOpError
			w := f.charge(next, "")
			if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "keybrake_upstream_unreachable") {
				t.Fatalf("answer: %d %s", w.Code, w.Body)
			}
			if got := w.Header().Get("Stripe-Should-Retry"); got != "true" {
				t.Fatalf("Stripe-Should-Retry = %q; want true", got)
			}
			c := f.lastCall()
			if c.CostState != ledger.CostReleased || c.Outcome != ledger.OutcomeUpstreamUnreachable || c.StatusCode != http.StatusBadGateway {
				t.Fatalf("call = %+v", c)
			}
			if u := f.usage(); u.Reserved != 0 || u.Spent != 0 {
				t.Fatalf("usage = reserved %s spent %s; want nothing held", u.Reserved, u.Spent)
			}
		})
	}
}

func TestGateSentThenLostStaysUnknown(t *testing.T) {
	// The server reads the request, then hangs up without answering: the
	// vendor may have acted.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, _ = conn.Read(buf)
			conn.Close()
		}
	}()
	f := newGTFixture(t, "10")
	// Even a classifier that calls every error a dial error cannot release
	// a call whose request had a connection.
	f.gate.cfg.DialFailed = func(error) bool { return true }
	w := f.charge(transportTo("http://"+l.Addr().String()), "")
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "keybrake_upstream_error") {
		t.Fatalf("answer: %d %s", w.Code, w.Body)
	}
	if w.Header().Get("Stripe-Should-Retry") == "true" {
		t.Fatal("an ambiguous failure was called safe to retry")
	}
	if c := f.lastCall(); c.CostState != ledger.CostUnknown || c.Outcome != ledger.OutcomeUpstreamError {
		t.Fatalf("call = %+v", c)
	}
	if u := f.usage(); u.Reserved != 5*money.PerDollar {
		t.Fatalf("reserved = %s; want the $5 kept", u.Reserved)
	}
}
