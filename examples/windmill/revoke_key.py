"""Windmill step: revoke vault keys. Used twice in the flow:
 - as the last step, with key_id = results.issue_key.key_id;
 - as the flow's error handler, with no key_id: it then revokes every active
   key of the run label (run_label, else WM_FLOW_JOB_ID), which also covers a
   failure that happened before issue_key returned.
A revoked key is refused (401) on the next vendor call, on every node.
Standard library only.
"""

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import TypedDict


class keybrake(TypedDict):
    """The Windmill resource type "keybrake" (keybrake.resource-type.yaml)."""

    url: str
    api_token: str


def _call(method, url, api_token):
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"Bearer {api_token}"})
    with urllib.request.urlopen(req, timeout=30) as res:
        body = res.read()
    return json.loads(body) if body else None


def main(keybrake: keybrake, key_id: str = "", run_label: str = ""):
    base = keybrake["url"].rstrip("/")
    api_token = keybrake["api_token"]

    ids = [key_id] if key_id else []
    if not key_id:
        label = run_label or os.environ.get("WM_FLOW_JOB_ID")
        if not label:
            raise ValueError("nothing to revoke: pass key_id or run_label, or run inside a flow")
        cursor = ""
        while True:
            q = {"agent_run_label": label, "status": "active"}
            if cursor:
                q["cursor"] = cursor
            page = _call("GET", f"{base}/vault/keys?{urllib.parse.urlencode(q)}", api_token)
            ids += [k["key_id"] for k in page.get("data") or []]
            cursor = page.get("next_cursor") or ""
            if not cursor:
                break

    revoked = []
    for kid in ids:
        try:
            _call("DELETE", f"{base}/vault/keys/{urllib.parse.quote(kid)}", api_token)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                continue  # already gone
            raise
        revoked.append(kid)
    return {"revoked": revoked}
