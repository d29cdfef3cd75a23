package gate

import (
	"crypto/tls"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
)

// sendTrace watches, through net/http's client trace on the request's
// context, whether the upstream round trip ever had a connection to write
// the request on. reverse_proxy composes its own trace with this one and
// runs every attempt (its retries included) on the request's context, so
// the hooks see them all.
type sendTrace struct {
	connected atomic.Bool // some attempt got a connection (GotConn)
	tlsFailed atomic.Bool // a TLS handshake failed
}

// wrap returns r with the trace on its context.
func (t *sendTrace) wrap(r *http.Request) *http.Request {
	trace := &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { t.connected.Store(true) },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			if err != nil {
				t.tlsFailed.Store(true)
			}
		},
	}
	return r.WithContext(httptrace.WithClientTrace(r.Context(), trace))
}

// nothingSent reports whether err, the upstream handler's error, proves
// that no byte of the request reached the vendor: no attempt ever got a
// connection (net/http writes a request only on a connection it has
// traced with GotConn, HTTP/1 and HTTP/2 alike), and the failure is one of
// setting a connection up: a TLS handshake that failed, or a dial error as
// dialFailed tells (Caddy's reverseproxy.DialError). A transport that
// traces nothing (HTTP/3) proves nothing: its failures stay ambiguous.
func (t *sendTrace) nothingSent(err error, dialFailed func(error) bool) bool {
	if err == nil || t.connected.Load() {
		return false
	}
	return t.tlsFailed.Load() || (dialFailed != nil && dialFailed(err))
}
