package caddymodule

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keybrake/keybrake/ledger"
)

// registerBatchMetrics exposes the ledger's group commit: how many
// transactions it wrote and how many reservations and finishes went in
// them, so batch size and commits per call can be read off the metrics.
func registerBatchMetrics(reg *prometheus.Registry, b ledger.Batcher) error {
	counters := []struct {
		name, help string
		value      func(ledger.BatchStats) uint64
	}{
		{"ledger_batches_total", "Ledger write transactions of the group commit (each one commit).",
			func(s ledger.BatchStats) uint64 { return s.Batches }},
		{"ledger_batch_reserves_total", "Reservations written by the group commit.",
			func(s ledger.BatchStats) uint64 { return s.Reserves }},
		{"ledger_batch_finishes_total", "Settlements, releases and unknowns written by the group commit.",
			func(s ledger.BatchStats) uint64 { return s.Finishes }},
	}
	for _, c := range counters {
		f := prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: c.name, Help: c.help},
			func() float64 { return float64(c.value(b.BatchStats())) })
		if _, err := register(reg, f); err != nil {
			return err
		}
	}
	return nil
}
