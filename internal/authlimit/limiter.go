// Package authlimit slows down credential guessing: it counts failed
// authentications per client address and, past a burst, refuses that
// address's failing attempts for a while. Callers check the credential
// first and ask the limiter only about one that failed, so a valid
// credential is never refused because other clients behind the same
// address (a NAT, a load balancer) kept failing.
//
// It is a GCRA (a token bucket kept as one time per address): every failure
// pushes the address's "theoretical arrival time" one Refill interval
// further; an address whose time is more than Burst intervals ahead of now
// is refused until it is not. Successes cost nothing. Time is passed in, so
// tests need no sleeping.
package authlimit

import (
	"net"
	"sync"
	"time"
)

// Defaults for New.
const (
	DefaultMaxClients = 10_000
)

// Limiter is safe for concurrent use.
type Limiter struct {
	burst      time.Duration // Burst × Refill
	refill     time.Duration
	maxClients int

	mu  sync.Mutex
	tat map[string]time.Time
}

// New returns a limiter that lets an address fail burst times in a row,
// then once per refill. It tracks at most maxClients addresses (default
// DefaultMaxClients); past that, addresses it has forgotten are not
// limited, so memory stays bounded whatever the traffic.
func New(burst int, refill time.Duration, maxClients int) *Limiter {
	if burst < 1 {
		burst = 1
	}
	if refill <= 0 {
		refill = time.Second
	}
	if maxClients <= 0 {
		maxClients = DefaultMaxClients
	}
	return &Limiter{burst: time.Duration(burst) * refill, refill: refill, maxClients: maxClients, tat: map[string]time.Time{}}
}

// Allow tells whether addr may try to authenticate at now, and if not, how
// long until it may.
func (l *Limiter) Allow(addr string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.tat[addr]
	if !ok {
		return true, 0
	}
	if ahead := t.Sub(now); ahead > l.burst {
		return false, ahead - l.burst
	}
	return true, 0
}

// Fail records a failed authentication from addr at now.
func (l *Limiter) Fail(addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.tat[addr]
	if !ok && len(l.tat) >= l.maxClients {
		for a, at := range l.tat {
			if !at.After(now) {
				delete(l.tat, a) // fully recovered: nothing to remember
			}
		}
		if len(l.tat) >= l.maxClients {
			return
		}
	}
	if t.Before(now) {
		t = now
	}
	l.tat[addr] = t.Add(l.refill)
}

// ClientAddr is the address a request came from, without its port: the
// unit of limiting. Behind a proxy it is the proxy's address.
func ClientAddr(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}
