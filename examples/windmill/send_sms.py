"""Windmill for-each step: send one SMS through Keybrake's Twilio route with
the run's vault key as the Basic password (the username is ignored: Keybrake
puts the real account SID in the path and the real auth token in the header).
The real Twilio credentials never reach Windmill. Standard library only.

Not retried: Twilio has no idempotency key, so a retry after a timeout could
send the message twice. A cap hit (429, X-Keybrake-Cap-Hit: true) fails the
item, the loop and the flow, and the error handler revokes the run.
"""

import base64
import json
import urllib.error
import urllib.parse
import urllib.request

from .retry import is_cap_hit


def main(keybrake_url: str, vault_key: str, run_label: str, from_number: str, message: dict):
    # message: {"id": "...", "to": "+1...", "body": "..."}
    url = keybrake_url.rstrip("/") + "/2010-04-01/Accounts/ACkeybrake/Messages.json"
    form = urllib.parse.urlencode({"To": message["to"], "From": from_number, "Body": message["body"]}).encode()
    auth = base64.b64encode(f"ACkeybrake:{vault_key}".encode()).decode()
    req = urllib.request.Request(
        url,
        data=form,
        method="POST",
        headers={"Authorization": f"Basic {auth}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            sent = json.load(res)
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")
        if is_cap_hit(e):
            raise RuntimeError(f"Keybrake cap hit on message {message['id']} ({run_label}): {detail}") from None
        raise RuntimeError(f"message {message['id']} refused: {e.code} {detail}") from None
    return {"message_id": message["id"], "sid": sent.get("sid"), "status": sent.get("status")}
