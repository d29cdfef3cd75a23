// Windmill for-each step: charge one item with the official Stripe SDK,
// pointed at Keybrake instead of api.stripe.com, authenticated with the run's
// vault key (never the real Stripe secret).
//
// stripe-node takes only host/port/protocol (no path prefix), so it talks to
// Keybrake's root `/v1/*` route, which Keybrake forwards to Stripe.

import Stripe from "npm:stripe@17";
import { isCapHit, withRetry } from "./retry.ts";

// `item` is typed inline: Windmill's parser turns a named type (`Item`) or a
// `Record<…>` parameter into a resource type the flow does not have.
export async function main(
  keybrake_url: string,
  vault_key: string,
  run_label: string,
  item: { id: string; amount_cents: number },
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

  try {
    const pi = await withRetry(() =>
      stripe.paymentIntents.create(
        {
          amount: item.amount_cents,
          currency: "usd",
          confirm: true,
          payment_method: "pm_card_visa",
          payment_method_types: ["card"],
          metadata: { agent_run_label: run_label, item_id: item.id },
        },
        { idempotencyKey },
      )
    );
    return { item_id: item.id, payment_intent: pi.id, status: pi.status, amount_cents: pi.amount };
  } catch (err) {
    if (isCapHit(err)) {
      throw new Error(`Keybrake cap hit on item ${item.id}; not retried: ${(err as Error).message}`, { cause: err });
    }
    throw err;
  }
}
