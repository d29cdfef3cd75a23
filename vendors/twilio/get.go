package twilio

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// get sends GET {BaseURL}/2010-04-01/Accounts/{AccountSID}/{rel} with the
// real credentials and returns Twilio's status and at most limit bytes of
// its answer: the request both the price reconciler and Find send.
func (rc *Reconciler) get(ctx context.Context, rel string, limit int64) (int, []byte, error) {
	base := cmp.Or(strings.TrimRight(rc.BaseURL, "/"), DefaultReconcileBaseURL)
	u := base + "/" + APIVersion + "/Accounts/" + url.PathEscape(rc.AccountSID) + "/" + rel
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	// An API key, when set, is the Basic user, with AuthToken its secret.
	req.SetBasicAuth(cmp.Or(rc.APIKey, rc.AccountSID), rc.AuthToken)
	req.Header.Set("Accept", "application/json")
	client := rc.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, body, nil
}
