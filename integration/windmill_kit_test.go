package integration

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWindmillKitErrorHandler runs the Windmill kit's Python steps (standard
// library only) against a real node, as Windmill would: issue_key with a
// cap computed in floating point, charges to the cap, then the flow's error
// handler, which must revoke the run's key and return its summary.
func TestWindmillKitErrorHandler(t *testing.T) {
	need(t, false)
	python := needTool(t, "python3")
	n := startNode(t, nodeConfig{ledger: sqliteLedger(t), env: map[string]string{"STRIPE_API_BASE": env.stripeMock}})
	root, _ := filepath.Abs("..")
	resource, _ := json.Marshal(map[string]string{"url": n.url, "api_token": apiToken})
	step := func(code string) map[string]any {
		t.Helper()
		cmd := exec.Command(python, "-c", "import json, sys\n"+code)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "WM_FLOW_JOB_ID=wm-job-0193", "KEYBRAKE_RESOURCE="+string(resource),
			"PYTHONDONTWRITEBYTECODE=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("python step: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var v map[string]any
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &v); err != nil {
			t.Fatalf("python step printed %s: %v", out, err)
		}
		return v
	}
	// 1999*3/100*1.1 = 65.967 in decimal, 65.96700000000001 in floats.
	key := step(`import os
from examples.windmill import issue_key
r = issue_key.main(json.loads(os.environ["KEYBRAKE_RESOURCE"]), 1999 * 3 / 100 * 1.1)
print(json.dumps(r))`)
	if key["agent_run_label"] != "wm-job-0193" || key["keybrake_url"] != n.url {
		t.Fatalf("issue_key returned %v", key)
	}
	var view struct {
		TotalUSDCap json.Number `json:"total_usd_cap"`
	}
	apiCall(t, n, "GET", "/vault/keys/"+key["key_id"].(string), nil, &view)
	if view.TotalUSDCap.String() != "65.967" {
		t.Errorf("total_usd_cap %s; want the cap rounded to 65.967", view.TotalUSDCap)
	}
	vaultKey := key["vault_key"].(string)
	for i := range 4 { // $19.99 ×3 fits, the 4th is a cap hit: the loop fails
		_, err := createPI(stripeClient(n, vaultKey, ""), 1999, "")
		if i < 3 && err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			stripeErr(t, err, http.StatusTooManyRequests, "keybrake_cap_hit")
		}
	}
	res := step(`import os
from examples.windmill import on_failure
r = on_failure.main(json.loads(os.environ["KEYBRAKE_RESOURCE"]), {"name": "Error", "message": "Keybrake cap hit on item order-4"})
print(json.dumps(r))`)
	revoked, _ := res["revoked"].([]any)
	if len(revoked) != 1 || revoked[0] != key["key_id"] {
		t.Errorf("on_failure revoked %v; want [%s]", res["revoked"], key["key_id"])
	}
	summary, _ := res["summary"].(map[string]any)
	if summary["agent_run_label"] != "wm-job-0193" || summary["cap_hits"] != 1.0 || summary["spent_usd"] != 59.97 {
		t.Errorf("on_failure summary %v; want the run's, 1 cap hit, $59.97 spent", summary)
	}
	_, err := createPI(stripeClient(n, vaultKey, ""), 100, "")
	stripeErr(t, err, http.StatusUnauthorized, "keybrake_key_revoked")
}
