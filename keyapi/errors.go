package keyapi

import (
	"context"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
)

// Error codes of the API's JSON errors.
const (
	codeInvalidJSON       = "invalid_json"
	codeParameterUnknown  = "parameter_unknown"
	codeParameterMissing  = "parameter_missing"
	codeParameterInvalid  = "parameter_invalid"
	codeNotFound          = "not_found"
	codePayloadTooLarge   = "payload_too_large"
	codeLedgerUnavailable = "ledger_unavailable"
	codeInternal          = "internal_error"
)

// apiError is an error answered to the client as
// {"error":{"code","message","field"}}. Its message is safe to show.
type apiError struct {
	Status  int
	Code    string
	Message string
	Field   string // the request field or query parameter at fault, if any
}

func (e *apiError) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// invalidField is a 400 naming the field at fault.
func invalidField(field, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: codeParameterInvalid, Message: msg, Field: field}
}

// missingField is a 400 for a required field that is absent or empty.
func missingField(field string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: codeParameterMissing, Message: field + " is required", Field: field}
}

func errNotFound(msg string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: codeNotFound, Message: msg}
}

// writeError answers err. An *apiError is shown as is; a store error that
// wraps ledger.ErrInvalidPage is a 400, one that wraps ledger.ErrUnavailable
// a 503; anything else is a 500 whose details
// go to the log only.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, ledger.ErrInvalidPage):
		// limitParam refuses a bad limit first, so it is the cursor.
		ae = invalidField("cursor", "cursor is not the next_cursor of a page of this listing")
	case errors.Is(err, ledger.ErrUnavailable):
		h.log.Warn("key API: ledger unavailable", zap.String("method", r.Method),
			zap.String("path", r.URL.Path), zap.Error(err))
		w.Header().Set("Retry-After", "1")
		ae = &apiError{Status: http.StatusServiceUnavailable, Code: codeLedgerUnavailable,
			Message: "the ledger is unavailable; try again shortly"}
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		h.log.Debug("key API: client went away", zap.String("method", r.Method),
			zap.String("path", r.URL.Path), zap.Error(err))
		ae = &apiError{Status: http.StatusInternalServerError, Code: codeInternal, Message: "request canceled"}
	default:
		h.log.Error("key API: internal error", zap.String("method", r.Method),
			zap.String("path", r.URL.Path), zap.Error(err))
		ae = &apiError{Status: http.StatusInternalServerError, Code: codeInternal, Message: "internal error"}
	}
	writeJSON(w, ae.Status, errorBody{Error: errorDetail{Code: ae.Code, Message: ae.Message, Field: ae.Field}})
}
