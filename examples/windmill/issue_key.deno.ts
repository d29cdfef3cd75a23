// Windmill step: ask Keybrake for a short-lived, capped Stripe vault key for
// this flow run. Runs after the approval step, so an unapproved run never
// holds spend power. The run label is the flow's job id (WM_FLOW_JOB_ID);
// `run_label` is used only when the script runs outside a flow.

export async function main(
  keybrake_url: string, // e.g. "https://keybrake.internal" (the site root)
  api_token: string, // KEYBRAKE_API_TOKEN; pass "$var:f/keybrake/api_token"
  cap_usd: number, // lifetime cap of the key (total_usd_cap)
  daily_cap_usd: number = 0, // 0 = no per-day cap
  allowed_endpoints: string[] = ["POST /v1/payment_intents"],
  expires_in: string = "2h",
  run_label: string = "",
  metadata: Record<string, string> = {},
) {
  const label = Deno.env.get("WM_FLOW_JOB_ID") || run_label;
  if (!label) throw new Error("no run label: run inside a flow (WM_FLOW_JOB_ID) or pass run_label");

  const body: Record<string, unknown> = {
    vendor: "stripe",
    total_usd_cap: cap_usd,
    allowed_endpoints,
    expires_in,
    agent_run_label: label,
    metadata: {
      windmill_workspace: Deno.env.get("WM_WORKSPACE") ?? "",
      windmill_flow_path: Deno.env.get("WM_FLOW_PATH") ?? "",
      ...metadata,
    },
  };
  if (daily_cap_usd > 0) body.daily_usd_cap = daily_cap_usd;

  const res = await fetch(`${keybrake_url.replace(/\/+$/, "")}/vault/keys`, {
    method: "POST",
    headers: { Authorization: `Bearer ${api_token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) {
    throw new Error(`Keybrake refused the key: ${res.status} ${await res.text()}`);
  }
  const key = await res.json();
  // key_id for revocation, vault_key for the charge steps, the label for the summary.
  return {
    key_id: key.key_id,
    vault_key: key.vault_key,
    expires_at: key.expires_at,
    agent_run_label: label,
  };
}
