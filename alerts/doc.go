// Package alerts sends Keybrake's webhooks: events about keys and calls
// (a cap's threshold crossed, a cap hit, a key revoked, a call whose outcome
// is unknown, a token's budget threshold crossed), written to the ledger's
// durable outbox where they are noticed and sent from there by a Sender,
// retried with backoff until the receiver answers 2xx, at least once.
//
// Each event is stored once per webhook and crossing: its dedupe key (e.g.
// "key.threshold:vk…:total:80") is unique in the outbox, so several nodes and
// calls crossing the same threshold make one event. Bodies are signed like
// Stripe's webhooks:
//
//	Keybrake-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>
//
// The package is plain Go: it knows the ledger, not Caddy.
package alerts
