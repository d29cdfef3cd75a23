package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stripe/stripe-go/v82"
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

// inputs evaluates a module's input_transforms the way Windmill does: a
// path (results.issue_key.vault_key) is looked up here, any other
// expression is run as JavaScript by node with the same bindings (Windmill
// runs input transforms as JavaScript too); a path to nothing fails the
// test, so the flow cannot drift from what is tested.
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
	if !wmPath.MatchString(tr.Expr) {
		return j.evalJS(t, what, tr.Expr)
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

// wmPath is an input transform that names a value: results.issue_key.key_id.
var wmPath = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// evalJS runs a JavaScript input transform with node, flow_input, results
// and previous_result bound to the job's, and returns its JSON value.
func (j wmJob) evalJS(t *testing.T, what, expr string) any {
	t.Helper()
	bindings, _ := json.Marshal(map[string]any{"flow_input": j.flowInput, "results": j.results,
		"previous_result": j.previousResult})
	cmd := exec.Command(needTool(t, "node"), "-e", `const { flow_input, results, previous_result } = JSON.parse(process.env.WM_BINDINGS);
process.stdout.write(JSON.stringify(eval("(" + process.env.WM_EXPR + ")")));`)
	cmd.Env = append(os.Environ(), "WM_BINDINGS="+string(bindings), "WM_EXPR="+expr)
	out, err := cmd.Output()
	var v any
	if err == nil {
		err = json.Unmarshal(out, &v)
	}
	if err != nil {
		t.Fatalf("%s: evaluating %q: %v\n%s", what, expr, err, out)
	}
	return v
}

// wmRunner runs one kit script for a Windmill script path
// (f/keybrake/<name>) as a Windmill worker would: main() with the job's
// inputs by name, in a process whose environment is the job's. It returns
// main's result, or the error it raised.
type wmRunner func(t *testing.T, job wmJob, scriptPath string, inputs map[string]any) (map[string]any, error)

// runStep runs cmd as job's worker process and reads the "RESULT <json>"
// line it prints.
func runStep(t *testing.T, job wmJob, scriptPath string, inputs map[string]any, cmd *exec.Cmd) (map[string]any, error) {
	t.Helper()
	args, _ := json.Marshal(inputs)
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

// runPyStep runs the kit's Python script: main(**inputs).
func runPyStep(t *testing.T, job wmJob, scriptPath string, inputs map[string]any) (map[string]any, error) {
	t.Helper()
	root, _ := filepath.Abs("..")
	cmd := exec.Command("python3", "-c", `import json, os, sys
from examples.windmill import `+strings.TrimPrefix(scriptPath, "f/keybrake/")+` as step
print("\nRESULT " + json.dumps(step.main(**json.loads(os.environ["WM_ARGS"]))))`)
	cmd.Dir = root
	return runStep(t, job, scriptPath, inputs, cmd)
}

// denoRunner builds the kit's Deno scripts for Node
// (examples/windmill/testdata/deno_steps.mjs, with the npm packages of
// check.sh's cache: stripe@17 for charge.deno.ts) and runs them from there.
func denoRunner(t *testing.T) wmRunner {
	t.Helper()
	node := needTool(t, "node")
	out, err := exec.Command("bash", "../examples/windmill/check.sh", "--install-only").Output()
	if err != nil {
		t.Fatalf("installing the kit's npm packages: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	modules, dir := lines[len(lines)-1], t.TempDir()
	steps, _ := filepath.Abs("../examples/windmill/testdata/deno_steps.mjs")
	if b, err := exec.Command(node, steps, "build", "../examples/windmill", modules, dir).CombinedOutput(); err != nil {
		t.Fatalf("building the Deno scripts: %v\n%s", err, b)
	}
	return func(t *testing.T, job wmJob, scriptPath string, inputs map[string]any) (map[string]any, error) {
		t.Helper()
		args, _ := json.Marshal(inputs)
		name := strings.TrimPrefix(scriptPath, "f/keybrake/")
		return runStep(t, job, scriptPath, inputs, exec.Command(node, steps, "run", dir, name, string(args)))
	}
}

// wmLoopRun is one run of a kit flow whose parallel for-each is driven the
// way Windmill drives it.
type wmLoopRun struct {
	flowFile string // under examples/windmill/
	loopID   string
	// token is the API token in the keybrake resource (an issuer's).
	token string
	// runner runs the kit's scripts: one language set.
	runner    wmRunner
	flowInput map[string]any
	items     []any
	// step runs one iteration's loop step with its job's inputs.
	step func(job wmJob, m wmModule) error
	// capHit and revoked tell the errors of a step apart.
	capHit, revoked func(error) bool
}

// run executes the flow file as Windmill runs a parallel for-each whose
// flow has an error handler: issue_key in the root job; every iteration its
// own job (its own WM_FLOW_JOB_ID), the first four at once (parallelism 4);
// the iteration that hits the cap runs its copy of the error handler with
// the flow file's inputs; then the iterations still to run. It returns the
// issue_key result and the error handler's.
func (lr wmLoopRun) run(t *testing.T, n *node) (key, handled map[string]any) {
	t.Helper()
	flow, mods := lr.load(t)
	loop := mods[lr.loopID]
	root, key := lr.issueKey(t, n, mods)
	iteration := func(i int) wmJob { return lr.iteration(root, i) }
	var err error
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = lr.step(iteration(i), loop.Value.Modules[0]) }()
	}
	wg.Wait()
	failed := -1
	for i, err := range errs {
		switch {
		case err == nil:
		case failed >= 0:
			t.Fatalf("iterations %d and %d both failed: %v / %v", failed, i, errs[failed], err)
		case !lr.capHit(err):
			t.Fatalf("iteration %d failed other than by the cap: %v", i, err)
		default:
			failed = i
		}
	}
	if failed < 0 {
		t.Fatal("no iteration hit the cap")
	}

	// The failing iteration's copy of the error handler: its WM_FLOW_JOB_ID
	// is the iteration's; its inputs are the flow file's.
	hj := iteration(failed)
	hj.previousResult = map[string]any{"error": map[string]any{"name": "Error", "message": errs[failed].Error(),
		"step_id": loop.Value.Modules[0].ID}}
	handler := flow.Value.FailureModule
	if handled, err = lr.runner(t, hj, handler.Value.Path, hj.inputs(t, handler)); err != nil {
		t.Fatal(err)
	}
	if revoked, _ := handled["revoked"].([]any); len(revoked) != 1 || revoked[0] != key["key_id"] {
		t.Errorf("the iteration's error handler revoked %v; want the run's key %s", handled["revoked"], key["key_id"])
	}
	// The iterations not yet run, and a retry of the failed one: refused.
	for _, i := range []int{4, 5, failed} {
		if err := lr.step(iteration(i), loop.Value.Modules[0]); err == nil || !lr.revoked(err) {
			t.Errorf("iteration %d after the error handler: %v; want the revoked key refused", i, err)
		}
	}
	return key, handled
}

// load reads lr's flow file: the flow and its top-level modules by id.
func (lr wmLoopRun) load(t *testing.T) (wmFlow, map[string]wmModule) {
	t.Helper()
	raw, err := os.ReadFile("../examples/windmill/" + lr.flowFile)
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
	loop := mods[lr.loopID]
	if !loop.Value.Parallel || len(loop.Value.Modules) != 1 || flow.Value.FailureModule.Value.Path != "f/keybrake/on_failure" {
		t.Fatalf("%s is no longer a parallel loop with an error handler: %+v", lr.flowFile, loop.Value)
	}
	return flow, mods
}

// issueKey runs the flow's issue_key step in the root job and returns the
// root job, holding its result, and the result.
func (lr wmLoopRun) issueKey(t *testing.T, n *node, mods map[string]wmModule) (wmJob, map[string]any) {
	t.Helper()
	root := wmJob{id: "0193a1b2-root", resource: map[string]string{"url": n.url, "api_token": lr.token},
		flowInput: lr.flowInput, results: map[string]any{}}
	issue := mods["issue_key"]
	key, err := lr.runner(t, root, issue.Value.Path, root.inputs(t, issue))
	if err != nil {
		t.Fatal(err)
	}
	if key["agent_run_label"] != "windmill/0193a1b2-root" {
		t.Fatalf("issue_key labelled the run %v; want windmill/<flow job id>", key["agent_run_label"])
	}
	root.results["issue_key"] = key
	return root, key
}

// iteration is the job of the loop's i-th iteration: its own id, the
// item in flow_input.iter.
func (lr wmLoopRun) iteration(root wmJob, i int) wmJob {
	j := root
	j.id = fmt.Sprintf("0193a1b2-iter-%d", i)
	j.flowInput = map[string]any{"iter": map[string]any{"index": i, "value": lr.items[i]}}
	for k, v := range lr.flowInput {
		j.flowInput[k] = v
	}
	return j
}

// TestWindmillKitParallelLoop runs charge_batch__flow as Windmill runs it,
// against a real Caddy in front of stripe-mock, on an issuer token (as
// docs/tokens.md advises), with each language set: the iterations charge
// with the inputs the flow file gives them (the Deno set runs
// charge.deno.ts with stripe-node; stripe-python cannot be installed here,
// so the Python set's iterations charge with stripe-go); the one that hits
// the cap runs its copy of on_failure, which must revoke the run although
// its WM_FLOW_JOB_ID labels no key, and read the run's summary on the
// issuer token; the iterations still to run then get 401.
func TestWindmillKitParallelLoop(t *testing.T) {
	needPython(t)
	items := []any{}
	for i := range 6 {
		items = append(items, map[string]any{"id": fmt.Sprintf("order-%d", 1001+i), "amount_cents": 1999})
	}
	stripeCode := func(code string) func(error) bool {
		return func(err error) bool {
			var se *stripe.Error
			return errors.As(err, &se) && string(se.Code) == code
		}
	}
	for _, lang := range []string{"python", "deno"} {
		t.Run(lang, func(t *testing.T) {
			n, token := wmStripeNode(t)
			// 1999*3/100*1.1 = 65.967 in decimal, 65.96700000000001 in
			// floats: three $19.99 charges fit, the fourth is a cap hit.
			lr := wmLoopRun{flowFile: "charge_batch__flow/flow.yaml", loopID: "charge_each", token: token,
				flowInput: map[string]any{"cap_usd": 1999 * 3 / 100.0 * 1.1, "items": items}, items: items}
			if lang == "python" {
				lr.runner = runPyStep
				lr.step = func(job wmJob, m wmModule) error {
					in := job.inputs(t, m)
					item := in["item"].(map[string]any)
					_, err := createPI(stripeClient(n, in["vault_key"].(string), ""), int64(item["amount_cents"].(int)),
						fmt.Sprintf("%s:%s", in["run_label"], item["id"]))
					return err
				}
				lr.capHit, lr.revoked = stripeCode("keybrake_cap_hit"), stripeCode("keybrake_key_revoked")
			} else {
				lr.runner = denoRunner(t)
				lr.step = lr.scriptStep(t)
				lr.capHit, lr.revoked = said("Keybrake cap hit on item"), said("ERROR 401 ")
			}
			_, res := lr.run(t, n)
			summary, _ := res["summary"].(map[string]any)
			if summary["agent_run_label"] != "windmill/0193a1b2-root" || summary["cap_hits"] != 1.0 || summary["spent_usd"] != 59.97 {
				t.Errorf("error handler summary %v; want the run's on the issuer token: 1 cap hit, $59.97 spent", summary)
			}
		})
	}
}

// TestWindmillKitSMSFanout runs sms_fanout__flow the same way, each
// iteration running the kit's own send_sms (.py, then .deno.ts) through
// Keybrake's Twilio route to a stand-in Twilio: three one-segment US SMS at
// $0.0083 fit in $0.03, the fourth is a cap hit, its iteration's error
// handler revokes the run, and the later sends are refused with 401.
func TestWindmillKitSMSFanout(t *testing.T) {
	needPython(t)
	msgs := []any{}
	for i := range 6 {
		msgs = append(msgs, map[string]any{"id": fmt.Sprintf("m-%d", i), "to": fmt.Sprintf("+1415555010%d", i),
			"body": "Your order shipped."})
	}
	for _, lang := range []string{"python", "deno"} {
		t.Run(lang, func(t *testing.T) {
			fake := newFakeTwilio(t)
			n := startNode(t, nodeConfig{ledger: sqliteLedger(t), env: map[string]string{
				"TWILIO_ACCOUNT_SID": twilioRealSID, "TWILIO_AUTH_TOKEN": twilioRealToken, "TWILIO_API_BASE": fake.URL}})
			_, token := issuerToken(t, n, map[string]any{"vendors": []string{"twilio"}, "max_key_usd": 5,
				"max_ttl": "6h", "run_label_prefix": "windmill/"})
			lr := wmLoopRun{flowFile: "sms_fanout__flow/flow.yaml", loopID: "send_each", token: token, runner: runPyStep,
				flowInput: map[string]any{"cap_usd": 0.03, "from_number": "+15005550006", "messages": msgs}, items: msgs,
				capHit: said("Keybrake cap hit on message"), revoked: said("refused: 401")}
			if lang == "deno" {
				lr.runner = denoRunner(t)
			}
			lr.step = lr.scriptStep(t)
			_, res := lr.run(t, n)
			summary, _ := res["summary"].(map[string]any)
			if summary["cap_hits"] != 1.0 || summary["spent_usd"] != 0.0249 {
				t.Errorf("error handler summary %v; want 1 cap hit, $0.0249 spent", summary)
			}
			if got := fake.count("POST", "/2010-04-01/Accounts/"+twilioRealSID+"/Messages.json"); got != 3 {
				t.Errorf("Twilio got %d messages; want 3", got)
			}
		})
	}
}

// wmStripeNode is a node in front of stripe-mock and an issuer token for
// Stripe keys labelled windmill/… (as docs/tokens.md advises for the kit).
func wmStripeNode(t *testing.T) (*node, string) {
	t.Helper()
	n := startNode(t, nodeConfig{ledger: sqliteLedger(t), env: map[string]string{"STRIPE_API_BASE": env.stripeMock}})
	_, token := issuerToken(t, n, map[string]any{"vendors": []string{"stripe"}, "max_key_usd": 500,
		"max_ttl": "6h", "run_label_prefix": "windmill/"})
	return n, token
}

// scriptStep runs a loop step as the kit's own script, with lr's runner.
func (lr wmLoopRun) scriptStep(t *testing.T) func(job wmJob, m wmModule) error {
	return func(job wmJob, m wmModule) error {
		_, err := lr.runner(t, job, m.Value.Path, job.inputs(t, m))
		return err
	}
}

// said tells an error by what it says.
func said(what string) func(error) bool {
	return func(err error) bool { return strings.Contains(err.Error(), what) }
}

func needPython(t *testing.T) {
	t.Helper()
	need(t, false)
	needTool(t, "python3")
}

// TestWindmillKitIssueKeyRoundsCap: a cap computed in floating point is sent
// rounded to micro-dollars, and outside a flow the run label is the input.
func TestWindmillKitIssueKeyRoundsCap(t *testing.T) {
	needPython(t)
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

// TestWindmillKitOncePerCustomer runs charge_batch__flow on items whose
// customers repeat (the seed's pagination bug, small): the flow gives
// issue_key allow.customer = the distinct customers and once_per: customer,
// the parallel loop charges four items at a time, and each customer is
// charged exactly once. The duplicates are refused by Keybrake (403,
// X-Keybrake-Rule: once_per) and reported skipped by the charge step, so no
// iteration fails, the error handler never runs and the key stays active
// until the flow's own revoke step. The Deno set charges with
// charge.deno.ts (stripe-node); stripe-python cannot be installed here, so
// the Python set's iterations do what charge.py does with stripe-go.
func TestWindmillKitOncePerCustomer(t *testing.T) {
	needPython(t)
	customers := []string{"cus_A", "cus_B", "cus_A", "cus_C", "cus_B", "cus_A", "cus_C", "cus_B"}
	items := []any{}
	for i, c := range customers {
		items = append(items, map[string]any{"id": fmt.Sprintf("order-%d", 2001+i), "amount_cents": 1000, "customer": c})
	}
	for _, lang := range []string{"python", "deno"} {
		t.Run(lang, func(t *testing.T) {
			n, token := wmStripeNode(t)
			lr := wmLoopRun{flowFile: "charge_batch__flow/flow.yaml", loopID: "charge_each", token: token,
				runner: runPyStep, flowInput: map[string]any{"cap_usd": 200, "items": items}, items: items}
			charge := func(job wmJob, m wmModule) (map[string]any, error) {
				in := job.inputs(t, m)
				item := in["item"].(map[string]any)
				p := &stripe.PaymentIntentCreateParams{Amount: stripe.Int64(int64(item["amount_cents"].(int))),
					Currency: stripe.String("usd"), Customer: stripe.String(item["customer"].(string)),
					Confirm: stripe.Bool(true), PaymentMethod: stripe.String("pm_card_visa"),
					PaymentMethodTypes: []*string{stripe.String("card")}}
				p.SetIdempotencyKey(fmt.Sprintf("%s:%s", in["run_label"], item["id"]))
				pi, err := stripeClient(n, in["vault_key"].(string), "").V1PaymentIntents.Create(context.Background(), p)
				var se *stripe.Error
				switch {
				case err == nil:
					return map[string]any{"item_id": item["id"], "customer": item["customer"], "status": string(pi.Status)}, nil
				case errors.As(err, &se) && se.HTTPStatusCode == 403 && se.LastResponse != nil &&
					se.LastResponse.Header.Get("X-Keybrake-Rule") == "once_per":
					return map[string]any{"item_id": item["id"], "customer": item["customer"], "status": "skipped_duplicate"}, nil
				}
				return nil, err
			}
			if lang == "deno" {
				lr.runner = denoRunner(t)
				charge = func(job wmJob, m wmModule) (map[string]any, error) {
					return lr.runner(t, job, m.Value.Path, job.inputs(t, m))
				}
			}
			_, mods := lr.load(t)
			root, key := lr.issueKey(t, n, mods)
			var view struct {
				Status string `json:"status"`
				Rules  struct {
					Allow   map[string][]string `json:"allow"`
					OncePer string              `json:"once_per"`
				} `json:"rules"`
			}
			keyPath := "/vault/keys/" + key["key_id"].(string)
			apiCall(t, n, "GET", keyPath, nil, &view)
			allowed := slices.Sorted(slices.Values(view.Rules.Allow["customer"]))
			if view.Rules.OncePer != "customer" || !slices.Equal(allowed, []string{"cus_A", "cus_B", "cus_C"}) {
				t.Fatalf("issue_key gave the key rules %+v; want allow.customer = the 3 distinct customers, once_per customer", view.Rules)
			}

			// Parallelism 4: the iterations run four at a time.
			step := mods[lr.loopID].Value.Modules[0]
			results := make([]map[string]any, len(items))
			for start := 0; start < len(items); start += 4 {
				var wg sync.WaitGroup
				for i := start; i < min(start+4, len(items)); i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						res, err := charge(lr.iteration(root, i), step)
						if err != nil {
							t.Errorf("iteration %d failed (the error handler would run): %v", i, err)
						}
						results[i] = res
					}()
				}
				wg.Wait()
			}
			charged, skipped := map[string]int{}, 0
			for i, res := range results {
				switch {
				case res == nil:
				case res["customer"] != customers[i]:
					t.Errorf("iteration %d reported customer %v; want %s", i, res["customer"], customers[i])
				case res["status"] == "skipped_duplicate":
					skipped++
				default: // a PaymentIntent, in whatever status stripe-mock gives it
					charged[customers[i]]++
				}
			}
			if len(charged) != 3 || charged["cus_A"] != 1 || charged["cus_B"] != 1 || charged["cus_C"] != 1 || skipped != 5 {
				t.Errorf("charged %v, skipped %d; want each of the 3 customers charged once, 5 duplicates skipped", charged, skipped)
			}
			if apiCall(t, n, "GET", keyPath, nil, &view); view.Status != "active" {
				t.Errorf("key %s after the loop; want active (no error handler ran)", view.Status)
			}

			// The flow's summary step on the issuer token: 3 forwarded, the
			// 5 duplicates refused by once_per, no cap hit.
			sum := mods["summary"]
			root.results[lr.loopID] = results
			summary, err := lr.runner(t, root, sum.Value.Path, root.inputs(t, sum))
			if err != nil {
				t.Fatal(err)
			}
			byRule, _ := summary["refusals_by_rule"].(map[string]any)
			if summary["forwarded"] != 3.0 || summary["cap_hits"] != 0.0 || byRule["once_per"] != 5.0 || summary["spent_usd"] != 30.0 {
				t.Errorf("summary %v; want 3 forwarded ($30), 5 refused by once_per, no cap hit", summary)
			}
			if lang == "python" {
				checkPyRuleRefusals(t, n, key["vault_key"].(string))
			}
		})
	}
}

// checkPyRuleRefusals: retry.py, which charge.py asks whether a refusal is
// a skipped duplicate, tells Keybrake's real once_per refusal (a charge of
// cus_A again) from an allow refusal (cus_Z, not in the run's list), and
// retries neither. It reads status and headers as it does a stripe-python
// error's, here from urllib's HTTPError.
func checkPyRuleRefusals(t *testing.T, n *node, vaultKey string) {
	t.Helper()
	root, _ := filepath.Abs("..")
	cmd := exec.Command("python3", "-c", `import os, urllib.error, urllib.parse, urllib.request
from examples.windmill import retry
for customer in ("cus_A", "cus_Z"):
    body = urllib.parse.urlencode({"amount": 1000, "currency": "usd", "customer": customer}).encode()
    req = urllib.request.Request(os.environ["KB_URL"] + "/v1/payment_intents", data=body,
                                 headers={"Authorization": "Bearer " + os.environ["KB_KEY"]})
    try:
        urllib.request.urlopen(req, timeout=30)
        print(customer, "forwarded")
    except urllib.error.HTTPError as e:
        print(customer, e.code, retry.refused_by_rule(e), retry.is_once_per_refusal(e), retry.should_retry(e))`)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "KB_URL="+n.url, "KB_KEY="+vaultKey, "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	want := "cus_A 403 once_per True False\ncus_Z 403 allow False False\n"
	if err != nil || string(out) != want {
		t.Errorf("retry.py on Keybrake's rule refusals: %v\n%s\nwant:\n%s", err, out, want)
	}
}
