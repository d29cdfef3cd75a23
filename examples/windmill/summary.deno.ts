// Windmill step: what did this run spend? Reads Keybrake's ledger for the
// run label (calls, spend, cap hits, by endpoint) and returns it next to the
// per-item results of the loop, as the flow's result. An issuer token may
// read the summary of a run whose keys it issued.

// The Windmill resource type "keybrake" (keybrake.resource-type.yaml).
type Keybrake = { url: string; api_token: string };

export async function main(keybrake: Keybrake, run_label: string, charges: unknown[] = []) {
  const label = run_label; // results.issue_key.agent_run_label
  if (!label) throw new Error("no run label: pass results.issue_key.agent_run_label");
  const q = new URLSearchParams({ agent_run_label: label });
  const res = await fetch(`${keybrake.url.replace(/\/+$/, "")}/vault/summary?${q}`, {
    headers: { Authorization: `Bearer ${keybrake.api_token}` },
  });
  if (!res.ok) throw new Error(`summary failed: ${res.status} ${await res.text()}`);
  const summary = await res.json(); // {agent_run_label, calls, forwarded, cap_hits, refusals, spent_usd, keys, by_endpoint, …}
  if (summary.cap_hits > 0) console.log(`warning: ${summary.cap_hits} call(s) refused at the cap`);
  return { ...summary, charges };
}
