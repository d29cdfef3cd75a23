"""Windmill error handler of the flow (failure_module): the run failed (a cap
hit fails its for-each item, so the loop, so the flow), so the summary step
never ran. This step does both jobs of the end of a run: revoke every active
key of the run (label = WM_FLOW_JOB_ID, which here is the flow run's id), then
read the run's summary, so the failed run still says what it spent and why it
stopped. It returns {error, revoked, summary}. Standard library only.
"""

from typing import TypedDict

from .revoke_key import main as revoke
from .summary import main as summarize


class keybrake(TypedDict):
    """The Windmill resource type "keybrake" (keybrake.resource-type.yaml)."""

    url: str
    api_token: str


def main(keybrake: keybrake, error: dict = {}):
    # Revoke first: spend power ends even if the summary cannot be read.
    revoked = revoke(keybrake, "", "")["revoked"]
    summary = None
    try:
        summary = summarize(keybrake, "", [])
    except Exception as e:  # the revocation is what matters; say why
        print(f"summary unavailable: {e}")
    return {"error": error, "revoked": revoked, "summary": summary}
