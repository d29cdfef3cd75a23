"""Windmill step: what did this run spend? Reads Keybrake's ledger for the run
label (calls, spend, cap hits, by endpoint) and returns it next to the
per-item results of the charge loop, as the flow's result. Standard library only.
"""

import json
import os
import urllib.parse
import urllib.request


def main(keybrake_url: str, api_token: str, run_label: str = "", charges: list = []):
    label = run_label or os.environ.get("WM_FLOW_JOB_ID")
    if not label:
        raise ValueError("no run label: pass run_label or run inside a flow")
    url = keybrake_url.rstrip("/") + "/vault/summary?" + urllib.parse.urlencode({"agent_run_label": label})
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_token}"})
    with urllib.request.urlopen(req, timeout=30) as res:
        summary = json.load(res)  # {agent_run_label, calls, spent_usd, cap_hits, by_endpoint}
    if summary.get("cap_hits"):
        print(f"warning: {summary['cap_hits']} call(s) refused at the cap")
    return {**summary, "charges": charges}
