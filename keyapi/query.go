package keyapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

const (
	defaultPageLimit = 100
	maxPageLimit     = 1000
	maxLabelLength   = 200
	maxCursorLength  = 1024
	maxFilterLength  = 200
)

// parseQuery parses the query string and refuses parameters the endpoint
// does not know (a typo must not silently widen a filter) and parameters
// given more than once.
func parseQuery(r *http.Request, known ...string) (url.Values, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, &apiError{Status: http.StatusBadRequest, Code: codeParameterInvalid, Message: "malformed query string"}
	}
	names := make([]string, 0, len(v))
	for name := range v {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !slices.Contains(known, name) {
			return nil, &apiError{Status: http.StatusBadRequest, Code: codeParameterUnknown,
				Message: fmt.Sprintf("unknown query parameter %q", name), Field: name}
		}
		if len(v[name]) > 1 {
			return nil, invalidField(name, name+" is given more than once")
		}
	}
	return v, nil
}

// textParam returns a query parameter bounded in length.
func textParam(v url.Values, name string, maxLen int) (string, error) {
	s := v.Get(name)
	if len(s) > maxLen {
		return "", invalidField(name, fmt.Sprintf("%s must be at most %d characters", name, maxLen))
	}
	return s, nil
}

// limitParam parses limit: an integer in 1..maxLimit, def when absent.
func limitParam(v url.Values, def, maxLimit int) (int, error) {
	s := v.Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		return 0, invalidField("limit", fmt.Sprintf("limit must be an integer from 1 to %d", maxLimit))
	}
	return n, nil
}

// timeParam parses an RFC 3339 time; zero when absent.
func timeParam(v url.Values, name string) (time.Time, error) {
	s := v.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, invalidField(name, name+` must be an RFC 3339 time, e.g. "2025-01-31T09:00:00Z"`)
	}
	return t.UTC(), nil
}

// dayParam parses day, a UTC date (YYYY-MM-DD), as its midnight; zero
// when absent.
func dayParam(v url.Values) (time.Time, error) {
	s := v.Get("day")
	if s == "" {
		return time.Time{}, nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, invalidField("day", `day must be a UTC date, e.g. "2026-11-29"`)
	}
	return d, nil
}

// formatTime renders a time for the API: RFC 3339 in UTC.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// formatTimePtr renders an optional time; nil stays nil (JSON null).
func formatTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatTime(*t)
	return &s
}

// nullableCursor turns the store's "no next page" into JSON null.
func nullableCursor(c string) *string {
	if c == "" {
		return nil
	}
	return &c
}
