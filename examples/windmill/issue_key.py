"""Windmill step: ask Keybrake for a short-lived, capped vault key (Stripe,
Twilio, ...) for this flow run. Runs after the approval step, so an unapproved
run never holds spend power. The run label is `windmill/<WM_FLOW_JOB_ID>`, the
flow run's id (the prefix an issuer token's `run_label_prefix` asks for);
`run_label` is used only when the script runs outside a flow. Every later step,
the error handler included, takes the label from this step's result: inside a
for-each iteration WM_FLOW_JOB_ID is the iteration's id, not the run's.
Standard library only.
"""

import json
import os
import urllib.error
import urllib.request
from typing import TypedDict


class keybrake(TypedDict):
    """The Windmill resource type "keybrake" (keybrake.resource-type.yaml)."""

    url: str
    api_token: str


def usd6(x: float) -> float:
    """Caps go to Keybrake with at most 6 decimals (micro-dollars): a cap
    computed with floats (1999 * 20 / 100 * 1.1 = 439.78000000000003) is
    rounded here rather than refused."""
    return round(x, 6)


def main(
    keybrake: keybrake,  # "$res:f/keybrake/keybrake"
    vendor: str,  # "stripe", "twilio", ...
    cap_usd: float,  # lifetime cap of the key (total_usd_cap)
    daily_cap_usd: float = 0,  # 0 = no per-day cap
    allowed_endpoints: list = ["POST /v1/payment_intents"],
    expires_in: str = "2h",
    run_label: str = "",
    metadata: dict = {},
    rules: dict = {},  # e.g. {"allow": {"customer": [...]}, "once_per": "customer"} (docs/rules.md)
):
    job = os.environ.get("WM_FLOW_JOB_ID")
    label = f"windmill/{job}" if job else run_label
    if not label:
        raise ValueError("no run label: run inside a flow (WM_FLOW_JOB_ID) or pass run_label")

    body = {
        "vendor": vendor,
        "total_usd_cap": usd6(cap_usd),
        "allowed_endpoints": list(allowed_endpoints),
        "expires_in": expires_in,
        "agent_run_label": label,
        "metadata": {
            "windmill_workspace": os.environ.get("WM_WORKSPACE", ""),
            "windmill_flow_path": os.environ.get("WM_FLOW_PATH", ""),
            **metadata,
        },
    }
    if daily_cap_usd > 0:
        body["daily_usd_cap"] = usd6(daily_cap_usd)
    if rules:
        body["rules"] = rules

    base = keybrake["url"].rstrip("/")
    req = urllib.request.Request(
        base + "/vault/keys",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {keybrake['api_token']}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            key = json.load(res)
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"Keybrake refused the key: {e.code} {e.read().decode(errors='replace')}") from None

    # key_id for revocation, vault_key and keybrake_url for the charge steps
    # (which need no API token), the label for the summary.
    return {
        "keybrake_url": base,
        "key_id": key["key_id"],
        "vault_key": key["vault_key"],
        "expires_at": key["expires_at"],
        "agent_run_label": label,
    }
