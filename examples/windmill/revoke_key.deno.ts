// Windmill step: revoke vault keys. Used twice in the flow:
//  - as the last step, with key_id = results.issue_key.key_id;
//  - as the flow's error handler, with no key_id: it then revokes every active
//    key of the run label (run_label, else WM_FLOW_JOB_ID), which also covers
//    a failure that happened before issue_key returned.
// A revoked key is refused (401) on the next vendor call, on every node.

// The Windmill resource type "keybrake" (keybrake.resource-type.yaml).
type Keybrake = { url: string; api_token: string };

export async function main(keybrake: Keybrake, key_id: string = "", run_label: string = "") {
  const base = keybrake.url.replace(/\/+$/, "");
  const headers = { Authorization: `Bearer ${keybrake.api_token}` };

  let ids: string[] = key_id ? [key_id] : [];
  if (!key_id) {
    const label = run_label || Deno.env.get("WM_FLOW_JOB_ID");
    if (!label) throw new Error("nothing to revoke: pass key_id or run_label, or run inside a flow");
    let cursor = "";
    do {
      const q = new URLSearchParams({ agent_run_label: label, status: "active" });
      if (cursor) q.set("cursor", cursor);
      const res = await fetch(`${base}/vault/keys?${q}`, { headers });
      if (!res.ok) throw new Error(`listing keys failed: ${res.status} ${await res.text()}`);
      const page = await res.json();
      ids = ids.concat((page.data ?? []).map((k: { key_id: string }) => k.key_id));
      cursor = page.next_cursor ?? "";
    } while (cursor);
  }

  const revoked: string[] = [];
  for (const id of ids) {
    const res = await fetch(`${base}/vault/keys/${encodeURIComponent(id)}`, { method: "DELETE", headers });
    await res.body?.cancel();
    if (res.status === 404) continue; // already gone
    if (!res.ok) throw new Error(`revoking ${id} failed: ${res.status}`);
    revoked.push(id);
  }
  return { revoked };
}
