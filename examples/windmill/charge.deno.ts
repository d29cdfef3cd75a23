// Windmill for-each step: charge one item with the official Stripe SDK,
// pointed at Keybrake instead of api.stripe.com, authenticated with the run's
// vault key (never the real Stripe secret).
//
// stripe-node takes only host/port/protocol (no path prefix), so it talks to
// Keybrake's root `/v1/*` route, which Keybrake forwards to Stripe.
//
// An item may name its Stripe `customer`. When the run's key has
// `once_per: customer` (issue_key's `rules`), a second charge of a customer
// in the same run is refused by Keybrake (403 keybrake_rule_denied,
// `X-Keybrake-Rule: once_per`): that item is a duplicate and is returned as
// skipped, so it neither fails the loop nor triggers the error handler.
// Every other refusal (a customer outside `allow.customer`, a cap hit) still
// fails.

import Stripe from "npm:stripe@17";
import { isCapHit, isOncePerRefusal, withRetry } from "./retry.ts";

// `item` is typed inline: Windmill's parser turns a named type (`Item`) or a
// `Record<…>` parameter into a resource type the flow does not have.
export async function main(
  keybrake_url: string,
  vault_key: string,
  run_label: string,
  item: { id: string; amount_cents: number; customer?: string },
) {
  const url = new URL(keybrake_url);
  if (url.pathname !== "/") {
    throw new Error(`stripe-node cannot use a path prefix (${url.pathname}); pass the bare Keybrake address`);
  }
  const protocol = url.protocol === "http:" ? "http" : "https";
  const stripe = new Stripe(vault_key, {
    host: url.hostname,
    port: Number(url.port || (protocol === "http" ? 80 : 443)),
    protocol,
    maxNetworkRetries: 0, // retries are ours (withRetry), so a cap hit is never retried
    httpClient: Stripe.createFetchHttpClient(),
  });

  // Same run + same item => same key: a retry (ours, or a re-run of the flow
  // step) replays the first PaymentIntent instead of charging twice.
  const idempotencyKey = `${run_label}:${item.id}`;

  const customer = item.customer || null;
  const params: Stripe.PaymentIntentCreateParams = {
    amount: item.amount_cents,
    currency: "usd",
    confirm: true,
    payment_method: "pm_card_visa",
    payment_method_types: ["card"],
    metadata: { agent_run_label: run_label, item_id: item.id },
  };
  if (customer) params.customer = customer;

  try {
    const pi = await withRetry(() => stripe.paymentIntents.create(params, { idempotencyKey }));
    return { item_id: item.id, customer, status: pi.status, payment_intent: pi.id, amount_cents: pi.amount };
  } catch (err) {
    if (isOncePerRefusal(err)) {
      console.log(`item ${item.id}: customer ${customer} already charged in this run; skipped`);
      return { item_id: item.id, customer, status: "skipped_duplicate", payment_intent: null, amount_cents: 0 };
    }
    if (isCapHit(err)) {
      throw new Error(`Keybrake cap hit on item ${item.id}; not retried: ${(err as Error).message}`, { cause: err });
    }
    throw err;
  }
}
