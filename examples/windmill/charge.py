# /// script
# dependencies = ["stripe>=12.5"]
# ///
"""Windmill for-each step: charge one item with the official Stripe SDK,
pointed at Keybrake instead of api.stripe.com, authenticated with the run's
vault key (never the real Stripe secret).

stripe-python takes a full base address, so either the root (`/v1/*` route)
or the `/stripe` prefix works; the root is used to match the Deno version.

An item may name its Stripe `customer`. When the run's key has
`once_per: customer` (issue_key's `rules`), a second charge of a customer in
the same run is refused by Keybrake (403 keybrake_rule_denied,
`X-Keybrake-Rule: once_per`): that item is a duplicate and is returned as
skipped, so it neither fails the loop nor triggers the error handler. Every
other refusal (a customer outside `allow.customer`, a cap hit) still fails.
"""

import stripe

from .retry import call_with_retry, is_cap_hit, is_once_per_refusal


def main(keybrake_url: str, vault_key: str, run_label: str, item: dict):
    client = stripe.StripeClient(
        vault_key,
        base_addresses={"api": keybrake_url.rstrip("/")},
        max_network_retries=0,  # retries are ours (call_with_retry), so a cap hit is never retried
    )

    # Same run + same item => same key: a retry (ours, or a re-run of the flow
    # step) replays the first PaymentIntent instead of charging twice.
    idempotency_key = f"{run_label}:{item['id']}"

    params = {
        "amount": int(item["amount_cents"]),
        "currency": "usd",
        "confirm": True,
        "payment_method": "pm_card_visa",
        "payment_method_types": ["card"],
        "metadata": {"agent_run_label": run_label, "item_id": str(item["id"])},
    }
    customer = item.get("customer")
    if customer:
        params["customer"] = customer

    def charge():
        return client.v1.payment_intents.create(params=params, options={"idempotency_key": idempotency_key})

    try:
        pi = call_with_retry(charge)
    except stripe.StripeError as e:
        if is_once_per_refusal(e):
            print(f"item {item['id']}: customer {customer} already charged in this run; skipped")
            return {"item_id": item["id"], "customer": customer, "status": "skipped_duplicate",
                    "payment_intent": None, "amount_cents": 0}
        if is_cap_hit(e):
            raise RuntimeError(f"Keybrake cap hit on item {item['id']}; not retried: {e.user_message or e}") from e
        raise
    return {"item_id": item["id"], "customer": customer, "status": pi.status, "payment_intent": pi.id,
            "amount_cents": pi.amount}
