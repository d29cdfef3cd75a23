"""Windmill error handler (failure_module) of the kit's flows. A cap hit fails
its for-each item, so the loop, so the flow, and the steps that revoke the key
and read the summary never run: this step does both, so the failed run still
says what it spent and why it stopped. It returns {error, revoked, summary}.

Windmill runs each iteration of a parallel for-each as its own subflow with a
copy of this handler, so the handler may run inside the failing iteration,
where WM_FLOW_JOB_ID is the iteration's id. The run label and key id therefore
come from the flow (`results.issue_key`), never from the environment.
Standard library only.
"""

from typing import TypedDict

from .revoke_key import main as revoke
from .summary import main as summarize


class keybrake(TypedDict):
    """The Windmill resource type "keybrake" (keybrake.resource-type.yaml)."""

    url: str
    api_token: str


def main(keybrake: keybrake, run_label: str, key_id: str = "", error: dict = {}):
    # Revoke first: spend power ends even if the summary cannot be read.
    revoked = revoke(keybrake, key_id, run_label)["revoked"]
    summary = None
    try:
        summary = summarize(keybrake, run_label, [])
    except Exception as e:  # the revocation is what matters; say why
        print(f"summary unavailable: {e}")
    return {"error": error, "revoked": revoked, "summary": summary}
