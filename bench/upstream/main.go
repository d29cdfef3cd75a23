// Command upstream is a fast fake Stripe for Keybrake's benchmarks. It
// answers only what the benchmark sends, with tiny fixed-shape bodies, so
// that the upstream costs as little as possible and the figures measure the
// proxy in front of it:
//
//	POST /v1/payment_intents   -> 200, a PaymentIntent echoing amount and currency
//	GET  /v1/customers/{id}    -> 200, a Customer with that id
//
// Anything else is a Stripe-shaped 404. It listens on loopback only.
//
//	upstream -addr 127.0.0.1:9100
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback only)")
	flag.Parse()

	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		log.Fatalf("upstream: bad -addr: %v", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Fatalf("upstream: refusing to listen on non-loopback address %q", *addr)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("upstream: %v", err)
	}
	fmt.Fprintf(os.Stdout, "listening on %s\n", ln.Addr())

	srv := &http.Server{
		Handler:           http.HandlerFunc(serve),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	log.Fatal(srv.Serve(ln))
}

var seq atomic.Uint64

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Request-Id", "req_bench")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/payment_intents":
		if err := r.ParseForm(); err != nil {
			writeErr(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", "unreadable form")
			return
		}
		amount, err := strconv.ParseInt(r.PostForm.Get("amount"), 10, 64)
		if err != nil || amount < 0 {
			writeErr(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid_integer", "bad amount")
			return
		}
		currency := strings.ToLower(r.PostForm.Get("currency"))
		if currency == "" {
			writeErr(w, http.StatusBadRequest, "invalid_request_error", "parameter_missing", "Missing required param: currency.")
			return
		}
		n := seq.Add(1)
		body := `{"id":"pi_bench` + strconv.FormatUint(n, 10) +
			`","object":"payment_intent","amount":` + strconv.FormatInt(amount, 10) +
			`,"currency":"` + jsonSafe(currency) +
			`","status":"requires_payment_method","livemode":false}`
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(body))
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/customers/") && len(r.URL.Path) > len("/v1/customers/"):
		id := strings.TrimPrefix(r.URL.Path, "/v1/customers/")
		body := `{"id":"` + jsonSafe(id) + `","object":"customer","livemode":false}`
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(body))
	default:
		writeErr(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "Unrecognized request URL.")
	}
}

func writeErr(w http.ResponseWriter, status int, typ, code, msg string) {
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"error":{"type":%q,"code":%q,"message":%q}}`, typ, code, msg)
}

// jsonSafe keeps only characters that need no JSON escaping.
func jsonSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
}
