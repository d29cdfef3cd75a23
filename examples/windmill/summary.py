"""Windmill step: what did this run spend? Reads Keybrake's ledger for the run
label (calls, spend, cap hits, by endpoint) and returns it next to the
per-item results of the loop, as the flow's result. An issuer token may read
the summary of a run whose keys it issued. Standard library only.
"""

import json
import urllib.parse
import urllib.request
from typing import TypedDict


class keybrake(TypedDict):
    """The Windmill resource type "keybrake" (keybrake.resource-type.yaml)."""

    url: str
    api_token: str


def main(keybrake: keybrake, run_label: str, charges: list = []):
    label = run_label  # results.issue_key.agent_run_label
    if not label:
        raise ValueError("no run label: pass results.issue_key.agent_run_label")
    url = keybrake["url"].rstrip("/") + "/vault/summary?" + urllib.parse.urlencode({"agent_run_label": label})
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {keybrake['api_token']}"})
    with urllib.request.urlopen(req, timeout=30) as res:
        summary = json.load(res)  # {agent_run_label, calls, forwarded, cap_hits, refusals, spent_usd, keys, by_endpoint, …}
    if summary.get("cap_hits"):
        print(f"warning: {summary['cap_hits']} call(s) refused at the cap")
    return {**summary, "charges": charges}
