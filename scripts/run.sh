#!/usr/bin/env bash
# run.sh starts Keybrake from Caddyfile.example on the embedded ledger (no
# Postgres, no other service). Every setting comes from the environment, as
# Caddyfile.example documents; unset ones get newcomer-friendly defaults here.
set -euo pipefail
cd "$(dirname "$0")/.."

export KEYBRAKE_LISTEN="${KEYBRAKE_LISTEN:-:8080}"
export KEYBRAKE_LEDGER="${KEYBRAKE_LEDGER:-sqlite:keybrake.db}"
if [[ -z "${KEYBRAKE_API_TOKEN:-}" ]]; then
	# A token for this session only; set KEYBRAKE_API_TOKEN to keep one.
	KEYBRAKE_API_TOKEN="dev$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	export KEYBRAKE_API_TOKEN
fi

port="${KEYBRAKE_LISTEN##*:}"
base="http://localhost:${port}"
cat <<MSG
Keybrake is starting on ${KEYBRAKE_LISTEN} (ledger: ${KEYBRAKE_LEDGER%%\?*})

  key API        ${base}/vault/keys   (Authorization: Bearer ${KEYBRAKE_API_TOKEN})
  Stripe         ${base}/v1/…  and  ${base}/stripe/v1/…
  Twilio         ${base}/2010-04-01/…  and  ${base}/twilio/…
  Resend         ${base}/resend/…

MSG
if [[ -z "${STRIPE_SECRET_KEY:-}" ]]; then
	cat <<MSG
  STRIPE_SECRET_KEY is not set: Stripe calls answer 503 until it is. To try
  Keybrake without Stripe, run stripe-mock and point Keybrake at it:
    go install github.com/stripe/stripe-mock@v0.203.0 && stripe-mock -http-port 12111 &
    STRIPE_SECRET_KEY=sk_test_123 STRIPE_API_BASE=http://localhost:12111 make run

MSG
fi
exec bin/caddy run --config Caddyfile.example --adapter caddyfile
