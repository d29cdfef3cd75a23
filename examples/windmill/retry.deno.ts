// Shared helper (no main): retry transient failures of a vendor call made
// through Keybrake, and never retry a cap hit.
//
// Retried: network errors, 409 (idempotency lock), 5xx, and anything Stripe
// explicitly marks `Stripe-Should-Retry: true`.
// Not retried: `X-Keybrake-Cap-Hit: true` (on any status), 401 (vault key
// revoked or expired), `Stripe-Should-Retry: false`, and every other 4xx.
//
// Works with stripe-node errors (err.statusCode, err.headers, err.raw) and
// with anything carrying `status` + `headers` (e.g. a fetch Response wrapped
// in an Error).

export type RetryOptions = {
  attempts?: number; // total tries, including the first
  baseDelayMs?: number;
  maxDelayMs?: number;
};

// deno-lint-ignore no-explicit-any
type AnyErr = any;

function header(err: AnyErr, name: string): string | undefined {
  for (const h of [err?.headers, err?.raw?.headers]) {
    if (!h) continue;
    if (typeof h.get === "function") {
      const v = h.get(name);
      if (v != null) return String(v);
      continue;
    }
    for (const [k, v] of Object.entries(h)) {
      if (k.toLowerCase() === name) return Array.isArray(v) ? v.join(",") : String(v);
    }
  }
  return undefined;
}

function status(err: AnyErr): number | undefined {
  return err?.statusCode ?? err?.raw?.statusCode ?? err?.status;
}

export function isCapHit(err: unknown): boolean {
  return header(err, "x-keybrake-cap-hit")?.toLowerCase() === "true";
}

// The rule that refused the call (X-Keybrake-Rule: once_per, allow, ...), or
// "" when no rule did.
export function refusedByRule(err: unknown): string {
  return header(err, "x-keybrake-rule") ?? "";
}

// 403 keybrake_rule_denied by the key's once_per rule: this subject (a
// customer) already had its one call in this run.
export function isOncePerRefusal(err: unknown): boolean {
  return status(err) === 403 && refusedByRule(err) === "once_per";
}

export function shouldRetry(err: unknown): boolean {
  if (isCapHit(err)) return false; // the cap is final for this key: a retry cannot succeed
  const s = status(err);
  if (s === 401) return false; // vault key revoked or expired
  const hint = header(err, "stripe-should-retry");
  if (hint === "false") return false;
  if (hint === "true") return true;
  if (s === undefined) {
    // No HTTP response at all: connection refused/reset, timeout.
    return (err as AnyErr)?.type === "StripeConnectionError";
  }
  return s === 409 || s >= 500;
}

export async function withRetry<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 4;
  const base = opts.baseDelayMs ?? 500;
  const max = opts.maxDelayMs ?? 8000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= attempts || !shouldRetry(err)) throw err;
      const delay = Math.min(max, base * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
      console.log(`transient error (status ${status(err) ?? "none"}), retry ${attempt}/${attempts - 1} in ${Math.round(delay)} ms`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
