package simvendor

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Request is one request a simulated vendor received, as it arrived.
type Request struct {
	Vendor string
	Method string
	URL    string // path and query, as sent
	Header http.Header
	Body   []byte
}

// receive reads r's body, records the request and gives the body back to r.
func (s *Sim) receive(vendor string, r *http.Request) []byte {
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	s.requests = append(s.requests, Request{
		Vendor: vendor,
		Method: r.Method,
		URL:    r.URL.RequestURI(),
		Header: r.Header.Clone(),
		Body:   body,
	})
	s.mu.Unlock()
	return body
}

// Requests counts the requests vendor received ("" for all vendors),
// whatever their outcome, refused ones included.
func (s *Sim) Requests(vendor string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, rq := range s.requests {
		if vendor == "" || rq.Vendor == vendor {
			n++
		}
	}
	return n
}

// Received returns a copy of every request received, oldest first.
func (s *Sim) Received() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, rq := range s.requests {
		rq.Header = rq.Header.Clone()
		rq.Body = append([]byte(nil), rq.Body...)
		out[i] = rq
	}
	return out
}

// SawString reports whether str appears in any request received: its URL
// (raw and decoded), any header name or value (a Basic credential decoded
// too), or its body (raw and, for a form, decoded). Tests use it to show
// that a vault key never reached a vendor.
func (s *Sim) SawString(str string) bool {
	if str == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rq := range s.requests {
		for _, hay := range haystacks(rq) {
			if strings.Contains(hay, str) {
				return true
			}
		}
	}
	return false
}

// haystacks is every readable form of rq.
func haystacks(rq Request) []string {
	out := []string{rq.URL, string(rq.Body)}
	if u, err := url.PathUnescape(rq.URL); err == nil {
		out = append(out, u)
	}
	if u, err := url.QueryUnescape(rq.URL); err == nil {
		out = append(out, u)
	}
	if u, err := url.QueryUnescape(string(rq.Body)); err == nil {
		out = append(out, u)
	}
	for name, vs := range rq.Header {
		out = append(out, name)
		for _, v := range vs {
			out = append(out, v)
			if f := strings.Fields(v); len(f) == 2 && strings.EqualFold(f[0], "Basic") {
				if dec, err := base64.StdEncoding.DecodeString(f[1]); err == nil {
					out = append(out, string(dec))
				}
			}
		}
	}
	return out
}
