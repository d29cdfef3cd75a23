package integration

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryListsTheVendorKinds: the built Caddy has every vendor kind as a
// module of the keybrake app's vendor namespace.
func TestBinaryListsTheVendorKinds(t *testing.T) {
	need(t, false)
	out, err := exec.Command(env.caddyBin, "list-modules").CombinedOutput()
	if err != nil {
		t.Fatalf("list-modules: %v\n%s", err, out)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		listed[strings.TrimSpace(line)] = true
	}
	for _, kind := range []string{"stripe", "twilio", "resend", "declared"} {
		if !listed["keybrake.vendors."+kind] {
			t.Errorf("list-modules does not list keybrake.vendors.%s:\n%s", kind, out)
		}
	}
}
