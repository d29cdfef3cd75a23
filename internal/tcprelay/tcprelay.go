// Package tcprelay is a loopback TCP relay for fault tests: put it between
// a client and a server (Postgres, say), then cut its connections or stop
// it to make the server unreachable without touching the server itself,
// and restore it on the same address.
package tcprelay

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Relay forwards every connection made to Addr on to its target.
type Relay struct {
	Addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

// Start listens on a free loopback port and relays to target (host:port).
// The relay is stopped when the test ends.
func Start(t testing.TB, target string) *Relay {
	t.Helper()
	r := &Relay{target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.Addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(r.Stop)
	return r
}

func (r *Relay) serve(ln net.Listener) {
	r.mu.Lock()
	r.ln = ln
	r.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.pipe(c)
		}
	}()
}

func (r *Relay) pipe(c net.Conn) {
	up, err := net.DialTimeout("tcp", r.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	r.mu.Lock()
	r.conns[c], r.conns[up] = true, true
	r.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); up.Close(); c.Close() }()
	_, _ = io.Copy(c, up)
	c.Close()
	up.Close()
	r.mu.Lock()
	delete(r.conns, c)
	delete(r.conns, up)
	r.mu.Unlock()
}

// Cut closes every open connection but keeps accepting new ones.
func (r *Relay) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		c.Close()
	}
}

// Stop stops listening and closes every connection.
func (r *Relay) Stop() {
	r.mu.Lock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	r.mu.Unlock()
	r.Cut()
}

// Restore listens again on the same address after Stop.
func (r *Relay) Restore(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", r.Addr)
	if err != nil {
		t.Fatalf("relay listening again on %s: %v", r.Addr, err)
	}
	r.serve(ln)
}
