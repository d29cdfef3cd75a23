"""Windmill step: revoke vault keys. Used twice in each flow:
 - as the last step, with key_id = results.issue_key.key_id;
 - in the error handler (on_failure), with the run label and key id from
   results.issue_key: `DELETE /vault/keys?agent_run_label=…` revokes every
   key of the run at once (an issuer token: those it issued).
The label always comes from the flow, never from WM_FLOW_JOB_ID: in the error
handler of a parallel for-each iteration that is the iteration's id, which
labels no key. A revoked key is refused (401) on the next vendor call, on
every node. Standard library only.
"""

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import TypedDict


class keybrake(TypedDict):
    """The Windmill resource type "keybrake" (keybrake.resource-type.yaml)."""

    url: str
    api_token: str


def _delete(url, api_token):
    req = urllib.request.Request(url, method="DELETE", headers={"Authorization": f"Bearer {api_token}"})
    with urllib.request.urlopen(req, timeout=30) as res:
        body = res.read()
    return json.loads(body) if body else {}


def main(keybrake: keybrake, key_id: str = "", run_label: str = ""):
    if not key_id and not run_label:
        raise ValueError("nothing to revoke: pass key_id or run_label (results.issue_key)")
    base = keybrake["url"].rstrip("/")
    api_token = keybrake["api_token"]
    revoked = []
    if run_label:
        q = urllib.parse.urlencode({"agent_run_label": run_label})
        revoked += _delete(f"{base}/vault/keys?{q}", api_token).get("revoked") or []
    if key_id and key_id not in revoked:
        try:
            _delete(f"{base}/vault/keys/{urllib.parse.quote(key_id)}", api_token)
            revoked.append(key_id)
        except urllib.error.HTTPError as e:
            if e.code != 404:  # 404: already revoked, or not this token's
                raise
    return {"revoked": revoked}
