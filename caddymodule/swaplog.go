package caddymodule

import (
	"slices"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// swappableLogger is a logger whose destination can be changed after it
// was handed out. The pooled ledger outlives the config that opened it: its
// store and key watcher keep the logger they were given, and must still log
// where the running config says after a reload changes the logging.
type swappableLogger struct {
	current atomic.Pointer[coreHolder]
}

// coreHolder boxes the interface for atomic.Pointer.
type coreHolder struct{ core zapcore.Core }

// newSwappableLogger starts with base's destination.
func newSwappableLogger(base *zap.Logger) *swappableLogger {
	l := &swappableLogger{}
	l.set(base)
	return l
}

// set sends every later entry to logger's destination.
func (l *swappableLogger) set(logger *zap.Logger) {
	l.current.Store(&coreHolder{core: logger.Core()})
}

// logger returns a zap.Logger with base's name and options (caller,
// stack traces) whose entries go where the latest set says.
func (l *swappableLogger) logger(base *zap.Logger) *zap.Logger {
	return base.WithOptions(zap.WrapCore(func(zapcore.Core) zapcore.Core { return &swapCore{l: l} }))
}

// swapCore forwards each entry to the current core, with the fields added
// by With along the way.
type swapCore struct {
	l      *swappableLogger
	fields []zapcore.Field
}

func (c *swapCore) target() zapcore.Core {
	core := c.l.current.Load().core
	if len(c.fields) > 0 {
		core = core.With(c.fields)
	}
	return core
}

func (c *swapCore) Enabled(level zapcore.Level) bool {
	return c.l.current.Load().core.Enabled(level)
}

func (c *swapCore) With(fields []zapcore.Field) zapcore.Core {
	return &swapCore{l: c.l, fields: append(slices.Clip(c.fields), fields...)}
}

// Check asks the current core, which adds itself to the entry: Write is
// then called on it, not on swapCore.
func (c *swapCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if !c.Enabled(e.Level) {
		return ce
	}
	return c.target().Check(e, ce)
}

func (c *swapCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	return c.target().Write(e, fields)
}

func (c *swapCore) Sync() error { return c.l.current.Load().core.Sync() }

// Interface guard.
var _ zapcore.Core = (*swapCore)(nil)
