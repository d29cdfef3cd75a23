package keyapi

import (
	"encoding/base64"
	"net/http"
	"testing"
)

// TestForeignCursorIsABadRequest: a cursor the ledger did not make for
// that listing (garbage, or another listing's) is the client's mistake, a
// 400 naming the cursor, not an internal error.
func TestForeignCursorIsABadRequest(t *testing.T) {
	e := ledgerEnv(t)
	e.createKey(validKeyBody)
	e.createKey(validKeyBody)
	keysPage := decodeMap(t, e.do(http.MethodGet, "/vault/keys?limit=1", ""))
	keysCursor, _ := keysPage["next_cursor"].(string)
	if keysCursor == "" {
		t.Fatalf("GET /vault/keys?limit=1 gave no cursor: %v", keysPage)
	}
	garbage := base64.RawURLEncoding.EncodeToString([]byte("not a cursor"))
	for _, target := range []string{
		"/vault/keys?cursor=" + garbage,
		"/vault/audit?cursor=" + garbage,
		"/vault/audit?cursor=" + keysCursor,
	} {
		rec := e.do(http.MethodGet, target, "")
		if rec.Code != http.StatusBadRequest {
			t.Errorf("GET %s: %d %s; want 400", target, rec.Code, rec.Body)
			continue
		}
		if m := decodeMap(t, rec)["error"].(map[string]any); m["field"] != "cursor" || m["code"] != codeParameterInvalid {
			t.Errorf("GET %s: error %v; want parameter_invalid on cursor", target, m)
		}
	}
}
