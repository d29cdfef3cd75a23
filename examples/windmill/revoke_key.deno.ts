// Windmill step: revoke vault keys. Used twice in each flow:
//  - as the last step, with key_id = results.issue_key.key_id;
//  - in the error handler (on_failure), with the run label and key id from
//    results.issue_key: `DELETE /vault/keys?agent_run_label=…` revokes every
//    key of the run at once (an issuer token: those it issued).
// The label always comes from the flow, never from WM_FLOW_JOB_ID: in the
// error handler of a parallel for-each iteration that is the iteration's id,
// which labels no key. A revoked key is refused (401) on the next vendor
// call, on every node.

// The Windmill resource type "keybrake" (keybrake.resource-type.yaml).
type Keybrake = { url: string; api_token: string };

export async function main(keybrake: Keybrake, key_id: string = "", run_label: string = "") {
  if (!key_id && !run_label) throw new Error("nothing to revoke: pass key_id or run_label (results.issue_key)");
  const base = keybrake.url.replace(/\/+$/, "");
  const headers = { Authorization: `Bearer ${keybrake.api_token}` };
  const revoked: string[] = [];
  if (run_label) {
    const q = new URLSearchParams({ agent_run_label: run_label });
    const res = await fetch(`${base}/vault/keys?${q}`, { method: "DELETE", headers });
    if (!res.ok) throw new Error(`revoking run ${run_label} failed: ${res.status} ${await res.text()}`);
    revoked.push(...((await res.json()).revoked ?? []));
  }
  if (key_id && !revoked.includes(key_id)) {
    const res = await fetch(`${base}/vault/keys/${encodeURIComponent(key_id)}`, { method: "DELETE", headers });
    await res.body?.cancel();
    // 404: already revoked, or not this token's.
    if (res.ok) revoked.push(key_id);
    else if (res.status !== 404) throw new Error(`revoking ${key_id} failed: ${res.status}`);
  }
  return { revoked };
}
