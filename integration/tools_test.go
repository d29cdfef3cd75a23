package integration

import (
	"os"
	"os/exec"
	"testing"
)

// needTool returns the path of a program a test runs (python3, make,
// node, npm). Without it the test is skipped, except under
// KEYBRAKE_REQUIRE_E2E=1 (scripts/test.sh, CI), where it fails: a suite
// that silently skips what it cannot run proves nothing.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("KEYBRAKE_REQUIRE_E2E") == "1" {
		t.Fatalf("%s is not installed (KEYBRAKE_REQUIRE_E2E=1): %v", name, err)
	}
	t.Skipf("skipping: %s is not installed", name)
	return ""
}
