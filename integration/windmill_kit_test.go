package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// wmModule is the part of an OpenFlow module the Windmill kit's test runs.
type wmModule struct {
	ID    string `yaml:"id"`
	Value struct {
		Type            string                 `yaml:"type"`
		Path            string                 `yaml:"path"`
		InputTransforms map[string]wmTransform `yaml:"input_transforms"`
		Iterator        wmTransform            `yaml:"iterator"`
		Parallel        bool                   `yaml:"parallel"`
		Modules         []wmModule             `yaml:"modules"`
	} `yaml:"value"`
}

type wmTransform struct {
	Type  string `yaml:"type"`
	Value any    `yaml:"value"`
	Expr  string `yaml:"expr"`
}

type wmFlow struct {
	Value struct {
		Modules       []wmModule `yaml:"modules"`
		FailureModule wmModule   `yaml:"failure_module"`
	} `yaml:"value"`
}

// wmJob is one Windmill job's context: its own id (WM_FLOW_JOB_ID), the
// flow's input (with `iter` inside a loop iteration), the results of the
// run's steps (which Windmill resolves through the parent flow, so a loop
// iteration and its copy of the error handler see results.issue_key) and,
// for an error handler, the failed step's result.
type wmJob struct {
	id             string
	flowInput      map[string]any
	results        map[string]any
	previousResult map[string]any
	resource       map[string]string
}

// inputs evaluates a module's input_transforms the way Windmill does for
// the expressions the kit uses; any other expression fails the test, so the
// flow cannot drift from what is tested.
func (j wmJob) inputs(t *testing.T, m wmModule) map[string]any {
	t.Helper()
	out := map[string]any{}
	for name, tr := range m.Value.InputTransforms {
		out[name] = j.eval(t, m.ID+"."+name, tr)
	}
	return out
}

func (j wmJob) eval(t *testing.T, what string, tr wmTransform) any {
	t.Helper()
	if tr.Type == "static" {
		if s, ok := tr.Value.(string); ok && s == "$res:f/keybrake/keybrake" {
			return j.resource
		}
		return tr.Value
	}
	parts := strings.Split(tr.Expr, ".")
	var cur any
	switch parts[0] {
	case "results":
		cur = j.results
	case "flow_input":
		cur = j.flowInput
	case "previous_result":
		cur = j.previousResult
	default:
		t.Fatalf("%s: the test does not evaluate %q", what, tr.Expr)
	}
	for _, p := range parts[1:] {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("%s: %q: no %q in %v", what, tr.Expr, p, cur)
		}
		if cur, ok = m[p]; !ok {
			t.Fatalf("%s: %q: no %q in %v", what, tr.Expr, p, m)
		}
	}
	return cur
}

// runPyStep runs the kit's Python script for a Windmill script path
// (f/keybrake/<name>) as a Windmill worker would: main(**inputs) in a process
// whose environment is the job's. It returns main's result, or the error
// it raised.
func runPyStep(t *testing.T, job wmJob, scriptPath string, inputs map[string]any) (map[string]any, error) {
	t.Helper()
	root, _ := filepath.Abs("..")
	args, _ := json.Marshal(inputs)
	name := strings.TrimPrefix(scriptPath, "f/keybrake/")
	cmd := exec.Command("python3", "-c", `import json, os, sys
from examples.windmill import `+name+` as step
print("\nRESULT " + json.dumps(step.main(**json.loads(os.environ["WM_ARGS"]))))`)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "WM_FLOW_JOB_ID="+job.id, "WM_WORKSPACE=keybrake-test",
		"WM_FLOW_PATH=f/keybrake/charge_batch", "WM_ARGS="+string(args), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: %v\n%s", scriptPath, err, out)
	}
	_, res, ok := strings.Cut(string(out), "\nRESULT ")
	var v map[string]any
	if !ok || json.Unmarshal([]byte(res), &v) != nil {
		t.Fatalf("%s printed %s", scriptPath, out)
	}
	return v, nil
}

// TestWindmillKitParallelLoop runs charge_batch__flow as Windmill runs a
// parallel for-each whose flow has an error handler: issue_key (on an issuer
// token, as docs/tokens.md advises) in the root job; each iteration its own
// subflow job with its own WM_FLOW_JOB_ID, charging with the official Stripe
// SDK through a real Caddy in front of stripe-mock; the iteration that hits
// the cap runs its copy of the error handler (on_failure), with the inputs
// the flow file gives it. That copy must revoke the run, although its
// WM_FLOW_JOB_ID labels no key, and read the run's summary on the issuer
// token; the iterations still to run are then refused with 401.
func TestWindmillKitParallelLoop(t *testing.T) {
	need(t, false)
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("KEYBRAKE_REQUIRE_E2E") == "1" {
			t.Fatal("python3 is required to run the Windmill kit's steps")
		}
		t.Skip("no python3")
	}
	raw, err := os.ReadFile("../examples/windmill/charge_batch__flow/flow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var flow wmFlow
	if err := yaml.Unmarshal(raw, &flow); err != nil {
		t.Fatal(err)
	}
	mods := map[string]wmModule{}
	for _, m := range flow.Value.Modules {
		mods[m.ID] = m
	}
	loop := mods["charge_each"]
	if !loop.Value.Parallel || len(loop.Value.Modules) != 1 || flow.Value.FailureModule.Value.Path != "f/keybrake/on_failure" {
		t.Fatalf("charge_batch is no longer a parallel loop with an error handler: %+v", loop.Value)
	}

	n := startNode(t, nodeConfig{ledger: sqliteLedger(t), env: map[string]string{"STRIPE_API_BASE": env.stripeMock}})
	_, token := issuerToken(t, n, map[string]any{"vendors": []string{"stripe"}, "max_key_usd": 500,
		"max_ttl": "6h", "run_label_prefix": "windmill/"})
	items := []any{}
	for i := range 6 {
		items = append(items, map[string]any{"id": fmt.Sprintf("order-%d", 1001+i), "amount_cents": 1999})
	}
	// 1999*3/100*1.1 = 65.967 in decimal, 65.96700000000001 in floats: three
	// $19.99 charges fit, the fourth is a cap hit.
	root := wmJob{id: "0193a1b2-root", resource: map[string]string{"url": n.url, "api_token": token},
		flowInput: map[string]any{"cap_usd": 1999 * 3 / 100.0 * 1.1, "items": items}, results: map[string]any{}}

	issue := mods["issue_key"]
	key, err := runPyStep(t, root, issue.Value.Path, root.inputs(t, issue))
	if err != nil {
		t.Fatal(err)
	}
	if key["agent_run_label"] != "windmill/0193a1b2-root" {
		t.Fatalf("issue_key labelled the run %v; want windmill/<flow job id>", key["agent_run_label"])
	}
	root.results["issue_key"] = key

	// The iterations: each its own job. The first four run at once
	// (parallelism 4); the iteration that hits the cap runs its copy of the
	// error handler.
	charge := loop.Value.Modules[0]
	iteration := func(i int) wmJob {
		j := root
		j.id = fmt.Sprintf("0193a1b2-iter-%d", i)
		j.flowInput = map[string]any{"cap_usd": root.flowInput["cap_usd"], "items": items,
			"iter": map[string]any{"index": i, "value": items[i]}}
		return j
	}
	chargeOne := func(i int) error {
		in := iteration(i).inputs(t, charge)
		item := in["item"].(map[string]any)
		c := stripeClient(n, in["vault_key"].(string), "")
		_, err := createPI(c, int64(item["amount_cents"].(int)), fmt.Sprintf("%s:%s", in["run_label"], item["id"]))
		return err
	}
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = chargeOne(i) }()
	}
	wg.Wait()
	failed := -1
	for i, err := range errs {
		if err == nil {
			continue
		}
		if failed >= 0 {
			t.Fatalf("iterations %d and %d both failed: %v / %v", failed, i, errs[failed], err)
		}
		stripeErr(t, err, http.StatusTooManyRequests, "keybrake_cap_hit")
		failed = i
	}
	if failed < 0 {
		t.Fatal("no iteration hit the cap")
	}

	// The failing iteration's copy of the error handler: its WM_FLOW_JOB_ID
	// is the iteration's; its inputs are the flow file's.
	handlerJob := iteration(failed)
	handlerJob.previousResult = map[string]any{"error": map[string]any{"name": "Error",
		"message": "Keybrake cap hit on item " + items[failed].(map[string]any)["id"].(string), "step_id": "charge"}}
	handler := flow.Value.FailureModule
	res, err := runPyStep(t, handlerJob, handler.Value.Path, handlerJob.inputs(t, handler))
	if err != nil {
		t.Fatal(err)
	}
	if revoked, _ := res["revoked"].([]any); len(revoked) != 1 || revoked[0] != key["key_id"] {
		t.Errorf("the iteration's error handler revoked %v; want the run's key %s", res["revoked"], key["key_id"])
	}
	summary, _ := res["summary"].(map[string]any)
	if summary["agent_run_label"] != "windmill/0193a1b2-root" || summary["cap_hits"] != 1.0 || summary["spent_usd"] != 59.97 {
		t.Errorf("error handler summary %v; want the run's on the issuer token: 1 cap hit, $59.97 spent", summary)
	}

	// The iterations not yet run, and a retry of the failed one: 401.
	for _, i := range []int{4, 5, failed} {
		stripeErr(t, chargeOne(i), http.StatusUnauthorized, "keybrake_key_revoked")
	}
}

// TestWindmillKitIssueKeyRoundsCap: a cap computed in floating point is sent
// rounded to micro-dollars, and outside a flow the run label is the input.
func TestWindmillKitIssueKeyRoundsCap(t *testing.T) {
	need(t, false)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	n := startNode(t, nodeConfig{ledger: sqliteLedger(t), env: map[string]string{"STRIPE_API_BASE": env.stripeMock}})
	job := wmJob{resource: map[string]string{"url": n.url, "api_token": apiToken}}
	key, err := runPyStep(t, job, "f/keybrake/issue_key", map[string]any{"keybrake": job.resource, "vendor": "stripe",
		"cap_usd": 1999 * 20 / 100.0 * 1.1, "run_label": "windmill/manual-1"})
	if err != nil {
		t.Fatal(err)
	}
	var view struct {
		TotalUSDCap   json.Number `json:"total_usd_cap"`
		AgentRunLabel string      `json:"agent_run_label"`
	}
	apiCall(t, n, "GET", "/vault/keys/"+key["key_id"].(string), nil, &view)
	if view.TotalUSDCap.String() != "439.78" || view.AgentRunLabel != "windmill/manual-1" {
		t.Errorf("key %+v; want total_usd_cap 439.78 (rounded) and label windmill/manual-1", view)
	}
}
