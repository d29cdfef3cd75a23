package vendors

import (
	"net/http/httptest"
	"testing"
)

func TestCanonicalPathRefusesBypasses(t *testing.T) {
	bad := []string{
		"/v1/customers/..%2fpayouts", "/v1/customers/%2e%2e/payouts", "/v1//payouts",
		"/v1/customers/x%2Fy", "/v1/./payouts", "/v1/customers/%5c", "/v1/a%00",
	}
	for _, p := range bad {
		r := httptest.NewRequest("GET", "http://x"+p, nil)
		if got, err := CanonicalPath(r); err == nil {
			t.Errorf("CanonicalPath(%q) = %q; want refusal", p, got)
		}
	}
	r := httptest.NewRequest("GET", "http://x/v1/customers/cus_123?expand[]=x", nil)
	if got, err := CanonicalPath(r); err != nil || got != "/v1/customers/cus_123" {
		t.Errorf("got %q %v", got, err)
	}
}
