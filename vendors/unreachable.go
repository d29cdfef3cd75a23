package vendors

import (
	"context"
	"errors"
	"net"
)

// unreachableError is an HTTP client's failure to talk to a vendor, told
// without the URL and addresses the client's own error names.
type unreachableError struct {
	msg string
	err error
}

func (e *unreachableError) Error() string { return e.msg }
func (e *unreachableError) Unwrap() error { return e.err }

// Unreachable returns err, an error of an HTTP client asking a vendor
// (a lookup before pricing, a reconciler's list), as an error whose message
// says only what kind of failure it was: Go's errors name the URL and the
// address dialled ("Get \"http://10.0.0.7:8080/v1/…\": dial tcp …:
// connection refused"), and a lookup's error can reach the key holder, who
// must never learn where Keybrake's upstream is. The original stays
// reachable through errors.Is and errors.As.
func Unreachable(err error) error {
	if err == nil {
		return nil
	}
	msg := "the vendor could not be reached"
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		msg = "the vendor did not answer in time"
	case errors.Is(err, context.Canceled):
		msg = "the request to the vendor was cancelled"
	}
	return &unreachableError{msg: msg, err: err}
}
