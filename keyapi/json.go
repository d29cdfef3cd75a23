package keyapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxBodyBytes caps every request body.
const maxBodyBytes = 64 << 10

// decodeBody reads one JSON object from the request body into dst,
// rejecting unknown fields, trailing data and bodies over maxBodyBytes.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	tooLarge := &apiError{Status: http.StatusRequestEntityTooLarge, Code: codePayloadTooLarge,
		Message: fmt.Sprintf("request body is larger than %d bytes", maxBodyBytes)}
	if r.ContentLength > maxBodyBytes {
		return tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge
		}
		return &apiError{Status: http.StatusBadRequest, Code: codeInvalidJSON, Message: "could not read the request body"}
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return &apiError{Status: http.StatusBadRequest, Code: codeInvalidJSON, Message: "request body is empty; send a JSON object"}
	}
	if trimmed[0] != '{' {
		return &apiError{Status: http.StatusBadRequest, Code: codeInvalidJSON, Message: "request body must be a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &apiError{Status: http.StatusBadRequest, Code: codeInvalidJSON, Message: "unexpected data after the JSON object"}
	}
	return nil
}

// jsonError turns a decoding error into a 400 naming the field when it can.
func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return invalidField(typeErr.Field, fmt.Sprintf("%s has the wrong type: a JSON %s where a %s was expected",
			typeErr.Field, typeErr.Value, jsonKind(typeErr.Type.Kind().String())))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if unq, uerr := strconv.Unquote(name); uerr == nil {
			name = unq
		}
		return &apiError{Status: http.StatusBadRequest, Code: codeParameterUnknown,
			Message: fmt.Sprintf("unknown field %q", name), Field: name}
	}
	return &apiError{Status: http.StatusBadRequest, Code: codeInvalidJSON, Message: "request body is not valid JSON"}
}

// jsonKind names a Go kind the way a JSON user would.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "slice", "array":
		return "array"
	case "map", "struct":
		return "object"
	case "bool":
		return "boolean"
	default:
		return "number"
	}
}

// writeJSON writes v as the JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only a programming error gets here; never show its details.
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal_error","message":"internal error"}}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
