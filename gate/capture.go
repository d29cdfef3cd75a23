package gate

import (
	"net/http"
)

// captureWriter passes a response through to the client untouched while
// keeping its status and the first bytes of its body, so the vendor's
// transaction id and real amount can be read once it has streamed.
type captureWriter struct {
	http.ResponseWriter
	status  int
	limit   int
	body    []byte
	written int64
	// writeErr is the first error writing to the client (client gone).
	writeErr error
	// onFirstWrite, when set, is called before anything reaches the
	// client.
	onFirstWrite func()
}

func (c *captureWriter) firstWrite() {
	if f := c.onFirstWrite; f != nil {
		c.onFirstWrite = nil
		f()
	}
}

func newCaptureWriter(w http.ResponseWriter, limit int) *captureWriter {
	return &captureWriter{ResponseWriter: w, limit: limit}
}

func (c *captureWriter) WriteHeader(status int) {
	c.firstWrite()
	// 1xx responses are interim; the final status is the one that counts.
	if status >= 200 && c.status == 0 {
		c.status = status
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *captureWriter) Write(p []byte) (int, error) {
	c.firstWrite()
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if room := c.limit - len(c.body); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		c.body = append(c.body, p[:room]...)
	}
	n, err := c.ResponseWriter.Write(p)
	c.written += int64(n)
	if err != nil && c.writeErr == nil {
		c.writeErr = err
	}
	return n, err
}

// Flush lets reverse_proxy stream (it flushes through http.ResponseController).
func (c *captureWriter) Flush() {
	_ = http.NewResponseController(c.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// Interface guard.
var _ http.Flusher = (*captureWriter)(nil)
