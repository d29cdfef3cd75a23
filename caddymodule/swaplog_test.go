package caddymodule

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestSwappableLogger: a logger handed out before the swap, and one derived
// from it with fields, write where the latest set says, fields and name
// kept, at the level the new destination enables.
func TestSwappableLogger(t *testing.T) {
	firstCore, first := observer.New(zap.InfoLevel)
	secondCore, second := observer.New(zap.WarnLevel)
	base := zap.New(firstCore).Named("keybrake")
	swap := newSwappableLogger(base)
	logger := swap.logger(base)
	withFields := logger.With(zap.String("ledger", "sqlite:l.db"))

	withFields.Info("before")
	swap.set(zap.New(secondCore))
	withFields.Info("below the new level")
	withFields.Warn("after")

	if first.Len() != 1 || first.All()[0].Message != "before" {
		t.Fatalf("first destination got %v", first.All())
	}
	if second.Len() != 1 {
		t.Fatalf("second destination got %v", second.All())
	}
	e := second.All()[0]
	if e.Message != "after" || e.LoggerName != "keybrake" || e.ContextMap()["ledger"] != "sqlite:l.db" {
		t.Fatalf("second destination got %q from %q with %v", e.Message, e.LoggerName, e.ContextMap())
	}
}
