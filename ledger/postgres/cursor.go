package postgres

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Cursors are opaque to callers: base64 of the sort key of the last row
// returned, so the next page starts right after it even while rows are added.

var errPostgresCursor = errors.New("invalid cursor")

// postgresPageLimit applies KeyFilter's and AuditFilter's rule: 0 means
// 100, and no page is larger than 1000.
func postgresPageLimit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	default:
		return n
	}
}

// Keys page on (created_at, id), newest first.
func encodePostgresKeyCursor(createdAt time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString(
		[]byte(strconv.FormatInt(createdAt.UnixMicro(), 10) + ":" + id))
}

func decodePostgresKeyCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", errPostgresCursor
	}
	at, id, ok := strings.Cut(string(b), ":")
	micros, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil {
		return time.Time{}, "", errPostgresCursor
	}
	return time.UnixMicro(micros).UTC(), id, nil
}

// Calls page on (started_at, seq), oldest first.
func encodePostgresCallCursor(startedAt time.Time, seq int64) string {
	return base64.RawURLEncoding.EncodeToString(
		[]byte(strconv.FormatInt(startedAt.UnixMicro(), 10) + ":" + strconv.FormatInt(seq, 10)))
}

func decodePostgresCallCursor(c string) (time.Time, int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, 0, errPostgresCursor
	}
	at, seqStr, ok := strings.Cut(string(b), ":")
	micros, err1 := strconv.ParseInt(at, 10, 64)
	seq, err2 := strconv.ParseInt(seqStr, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return time.Time{}, 0, errPostgresCursor
	}
	return time.UnixMicro(micros).UTC(), seq, nil
}
