// Windmill step: ask Keybrake for a short-lived, capped vault key (Stripe,
// Twilio, ...) for this flow run. Runs after the approval step, so an
// unapproved run never holds spend power. The run label is
// `windmill/<WM_FLOW_JOB_ID>`, the flow run's id (the prefix an issuer token's
// `run_label_prefix` asks for); `run_label` is used only when the script runs
// outside a flow. Every later step, the error handler included, takes the
// label from this step's result: inside a for-each iteration WM_FLOW_JOB_ID is
// the iteration's id, not the run's.

// The Windmill resource type "keybrake" (keybrake.resource-type.yaml).
type Keybrake = { url: string; api_token: string };

// Caps go to Keybrake with at most 6 decimals (micro-dollars): a cap computed
// with floats (1999 * 20 / 100 * 1.1 = 439.78000000000003) is rounded here
// rather than refused.
const usd6 = (x: number) => Math.round(x * 1e6) / 1e6;

export async function main(
  keybrake: Keybrake, // "$res:f/keybrake/keybrake"
  vendor: string, // "stripe", "twilio", ...
  cap_usd: number, // lifetime cap of the key (total_usd_cap)
  daily_cap_usd: number = 0, // 0 = no per-day cap
  allowed_endpoints: string[] = ["POST /v1/payment_intents"],
  expires_in: string = "2h",
  run_label: string = "",
  metadata: object = {}, // added to the key's metadata
  // e.g. {allow: {customer: [...]}, once_per: "customer"} (docs/rules.md);
  // typed inline: Windmill's parser turns a named type into a resource type.
  rules: { allow?: { [subject: string]: string[] }; once_per?: string; [rule: string]: unknown } = {},
) {
  const job = Deno.env.get("WM_FLOW_JOB_ID");
  const label = job ? `windmill/${job}` : run_label;
  if (!label) throw new Error("no run label: run inside a flow (WM_FLOW_JOB_ID) or pass run_label");

  const body: { [field: string]: unknown } = {
    vendor,
    total_usd_cap: usd6(cap_usd),
    allowed_endpoints,
    expires_in,
    agent_run_label: label,
    metadata: {
      windmill_workspace: Deno.env.get("WM_WORKSPACE") ?? "",
      windmill_flow_path: Deno.env.get("WM_FLOW_PATH") ?? "",
      ...metadata,
    },
  };
  if (daily_cap_usd > 0) body.daily_usd_cap = usd6(daily_cap_usd);
  if (Object.keys(rules).length > 0) body.rules = rules;

  const base = keybrake.url.replace(/\/+$/, "");
  const res = await fetch(`${base}/vault/keys`, {
    method: "POST",
    headers: { Authorization: `Bearer ${keybrake.api_token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) {
    throw new Error(`Keybrake refused the key: ${res.status} ${await res.text()}`);
  }
  const key = await res.json();
  // key_id for revocation, vault_key and keybrake_url for the charge steps
  // (which need no API token), the label for the summary.
  return {
    keybrake_url: base,
    key_id: key.key_id,
    vault_key: key.vault_key,
    expires_at: key.expires_at,
    agent_run_label: label,
  };
}
