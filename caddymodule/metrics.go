package caddymodule

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keybrake/keybrake/gate"
)

// metrics are Keybrake's Prometheus metrics, in Caddy's registry (served
// wherever the user exposes Caddy's metrics). Labels are the vendor, the
// outcome and the settle decision only: never a key, a run label or a
// secret.
type metrics struct {
	calls          *prometheus.CounterVec
	reserved       *prometheus.CounterVec
	spent          *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	ledgerFailures *prometheus.CounterVec
}

const metricsNamespace = "keybrake"

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "calls_total",
			Help: "Vendor calls handled by the gate, by vendor, outcome and settle decision.",
		}, []string{"vendor", "outcome", "decision"}),
		reserved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "reserved_microdollars_total",
			Help: "Micro-dollars reserved before forwarding, by vendor.",
		}, []string{"vendor"}),
		spent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "spent_microdollars_total",
			Help: "Micro-dollars settled (real or provisional cost), by vendor.",
		}, []string{"vendor"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "gate_duration_seconds",
			Help:    "Time from the request reaching the gate to its settlement, by vendor.",
			Buckets: prometheus.DefBuckets,
		}, []string{"vendor"}),
		ledgerFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "ledger_failures_total",
			Help: "Calls during which the ledger could not be read or written, by vendor.",
		}, []string{"vendor"}),
	}
	var err error
	if m.calls, err = register(reg, m.calls); err != nil {
		return nil, err
	}
	if m.reserved, err = register(reg, m.reserved); err != nil {
		return nil, err
	}
	if m.spent, err = register(reg, m.spent); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.ledgerFailures, err = register(reg, m.ledgerFailures); err != nil {
		return nil, err
	}
	return m, nil
}

// newDeletedCallsMetric counts the call records retain_calls deleted.
func newDeletedCallsMetric() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "calls_deleted_total",
		Help: "Call records deleted because they were older than retain_calls.",
	})
}

// register adds c to reg, or returns the collector another handler of this
// config registered first under the same name, so they share it.
func register[T prometheus.Collector](reg *prometheus.Registry, c T) (T, error) {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			return c, err
		}
		existing, ok := already.ExistingCollector.(T)
		if !ok {
			return c, fmt.Errorf("metric registered with another type: %w", err)
		}
		return existing, nil
	}
	return c, nil
}

// observe records one gate event.
func (m *metrics) observe(e gate.Event) {
	m.calls.WithLabelValues(e.Vendor, e.Outcome, e.Decision).Inc()
	if e.Reserved > 0 {
		m.reserved.WithLabelValues(e.Vendor).Add(float64(e.Reserved))
	}
	if e.Cost > 0 && !e.LedgerError {
		m.spent.WithLabelValues(e.Vendor).Add(float64(e.Cost))
	}
	m.duration.WithLabelValues(e.Vendor).Observe(e.Duration.Seconds())
	if e.LedgerError {
		m.ledgerFailures.WithLabelValues(e.Vendor).Inc()
	}
}
