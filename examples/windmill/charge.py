# /// script
# dependencies = ["stripe>=12.5"]
# ///
"""Windmill for-each step: charge one item with the official Stripe SDK,
pointed at Keybrake instead of api.stripe.com, authenticated with the run's
vault key (never the real Stripe secret).

stripe-python takes a full base address, so either the root (`/v1/*` route)
or the `/stripe` prefix works; the root is used to match the Deno version.
"""

import stripe

from .retry import call_with_retry, is_cap_hit


def main(keybrake_url: str, vault_key: str, run_label: str, item: dict):
    client = stripe.StripeClient(
        vault_key,
        base_addresses={"api": keybrake_url.rstrip("/")},
        max_network_retries=0,  # retries are ours (call_with_retry), so a cap hit is never retried
    )

    # Same run + same item => same key: a retry (ours, or a re-run of the flow
    # step) replays the first PaymentIntent instead of charging twice.
    idempotency_key = f"{run_label}:{item['id']}"

    def charge():
        return client.v1.payment_intents.create(
            params={
                "amount": int(item["amount_cents"]),
                "currency": "usd",
                "confirm": True,
                "payment_method": "pm_card_visa",
                "payment_method_types": ["card"],
                "metadata": {"agent_run_label": run_label, "item_id": str(item["id"])},
            },
            options={"idempotency_key": idempotency_key},
        )

    try:
        pi = call_with_retry(charge)
    except stripe.StripeError as e:
        if is_cap_hit(e):
            raise RuntimeError(f"Keybrake cap hit on item {item['id']}; not retried: {e.user_message or e}") from e
        raise
    return {"item_id": item["id"], "payment_intent": pi.id, "status": pi.status, "amount_cents": pi.amount}
