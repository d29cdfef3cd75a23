package ledger

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Paging is the same on every backend: the limit rule, the cursor format
// and the trimming of a page are written here once, so that a cursor or a
// limit means the same whatever ledger serves it.

// ErrInvalidPage: a negative limit, or a cursor that no listing of that
// kind returned. The caller's request is wrong; asking again will not help.
var ErrInvalidPage = errors.New("invalid page request")

// Page sizes of ListKeys, Audit and PendingCalls.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// PageLimit applies the listings' limit rule: 0 means DefaultPageLimit, a
// limit above MaxPageLimit is MaxPageLimit, and a negative limit is
// ErrInvalidPage (a caller's mistake, not a request for the default).
func PageLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultPageLimit, nil
	case limit < 0:
		return 0, fmt.Errorf("%w: limit %d is negative", ErrInvalidPage, limit)
	case limit > MaxPageLimit:
		return MaxPageLimit, nil
	}
	return limit, nil
}

// TrimPage cuts rows, read with one row more than limit to tell whether
// another page follows, to limit rows, and returns the cursor of the next
// page (cursorAt of the last row kept), or "" when there is none.
func TrimPage[T any](rows []T, limit int, cursorAt func(last int) string) ([]T, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	return rows[:limit], cursorAt(limit - 1)
}

// Cursors are opaque to callers: base64 of a tag naming the listing (so an
// audit cursor is refused by ListKeys) and the sort key of the last row of
// the page, so the next page starts right after it even while rows are
// added. Times are unix nanoseconds: exact for both backends' columns.
const (
	keyCursorTag  = "k1"
	callCursorTag = "a1"
)

// KeyCursor is the position of a key in ListKeys, which lists keys newest
// first by (CreatedAt, ID).
type KeyCursor struct {
	CreatedAt time.Time
	ID        string
}

// Encode returns the cursor's opaque form.
func (c KeyCursor) Encode() string {
	return encodeCursor(keyCursorTag, c.CreatedAt, c.ID)
}

// DecodeKeyCursor reads a cursor KeyCursor.Encode made.
func DecodeKeyCursor(cursor string) (KeyCursor, error) {
	at, id, err := decodeCursor(keyCursorTag, cursor)
	return KeyCursor{CreatedAt: at, ID: id}, err
}

// CallCursor is the position of a call in Audit, which lists calls oldest
// first by (StartedAt, Seq); Seq is the backend's insertion order.
type CallCursor struct {
	StartedAt time.Time
	Seq       int64
}

// Encode returns the cursor's opaque form.
func (c CallCursor) Encode() string {
	return encodeCursor(callCursorTag, c.StartedAt, strconv.FormatInt(c.Seq, 10))
}

// DecodeCallCursor reads a cursor CallCursor.Encode made.
func DecodeCallCursor(cursor string) (CallCursor, error) {
	at, tie, err := decodeCursor(callCursorTag, cursor)
	if err != nil {
		return CallCursor{}, err
	}
	seq, err := strconv.ParseInt(tie, 10, 64)
	if err != nil {
		return CallCursor{}, fmt.Errorf("%w: malformed cursor", ErrInvalidPage)
	}
	return CallCursor{StartedAt: at, Seq: seq}, nil
}

func encodeCursor(tag string, at time.Time, tie string) string {
	raw := tag + "|" + strconv.FormatInt(at.UnixNano(), 10) + "|" + tie
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(tag, cursor string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: malformed cursor", ErrInvalidPage)
	}
	parts := strings.SplitN(string(raw), "|", 3)
	if len(parts) != 3 || parts[0] != tag {
		return time.Time{}, "", fmt.Errorf("%w: not a cursor of this listing", ErrInvalidPage)
	}
	nanos, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: malformed cursor", ErrInvalidPage)
	}
	return time.Unix(0, nanos).UTC(), parts[2], nil
}

// Page checks what every backend checks before it lists keys: the limit
// (PageLimit), the status and the cursor, which is nil on the first page.
func (f KeyFilter) Page() (limit int, after *KeyCursor, err error) {
	switch f.Status {
	case "", StatusActive, StatusExpired, StatusRevoked:
	default:
		return 0, nil, fmt.Errorf("unknown status %q", f.Status)
	}
	return page(f.Limit, f.Cursor, DecodeKeyCursor)
}

// Page checks what every backend checks before it lists calls: the limit
// (PageLimit) and the cursor, which is nil on the first page.
func (f AuditFilter) Page() (limit int, after *CallCursor, err error) {
	return page(f.Limit, f.Cursor, DecodeCallCursor)
}

func page[C any](limit int, cursor string, decode func(string) (C, error)) (int, *C, error) {
	limit, err := PageLimit(limit)
	if err != nil || cursor == "" {
		return limit, nil, err
	}
	c, err := decode(cursor)
	if err != nil {
		return 0, nil, err
	}
	return limit, &c, nil
}
