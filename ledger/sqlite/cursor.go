package sqlite

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Cursors are opaque to callers: base64 of the sort key of the last row of
// the page, prefixed by a tag naming the listing so that an audit cursor
// cannot be fed to ListKeys by mistake.

var errSQLiteBadCursor = errors.New("invalid cursor")

func sqliteEncodeCursor(tag string, nanos int64, tie string) string {
	raw := tag + "|" + strconv.FormatInt(nanos, 10) + "|" + tie
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func sqliteDecodeCursor(tag, cursor string) (nanos int64, tie string, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return 0, "", fmt.Errorf("%w: %v", errSQLiteBadCursor, err)
	}
	parts := strings.SplitN(string(raw), "|", 3)
	if len(parts) != 3 || parts[0] != tag {
		return 0, "", errSQLiteBadCursor
	}
	nanos, err = strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("%w: %v", errSQLiteBadCursor, err)
	}
	return nanos, parts[2], nil
}
