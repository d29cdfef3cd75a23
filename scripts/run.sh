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

# Caddy's admin endpoint: Caddyfile.example's default is an owner-only unix
# socket in the working directory, never TCP (see SECURITY.md).
admin="${KEYBRAKE_ADMIN:-unix/keybrake-admin.sock|0600}"

# listening HOST PORT: is something already accepting connections there?
listening() {
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# Caddy binds with SO_REUSEPORT: a second Keybrake on the same ports would
# start silently and share the traffic with the first. Refuse instead.
listen="${KEYBRAKE_LISTEN#*://}"
port="${listen##*:}"
host="${listen%:*}"
[[ "$listen" == *:* ]] || { host="$listen"; port=""; }
admin_port=""
if [[ "$admin" == unix/* ]]; then
	sock="${admin#unix/}"
	sock="${sock%%|*}"
	if [[ -S "$sock" ]] && curl -s -o /dev/null --max-time 2 --unix-socket "$sock" http://localhost/config/; then
		cat >&2 <<MSG
Keybrake not started: its admin socket ${sock} is in use.
Another Keybrake (an earlier 'make run') is running from this directory: stop
it with Ctrl-C in its terminal, or run this one from another directory.
MSG
		exit 1
	fi
elif [[ "$admin" != off ]]; then
	admin_port="${admin##*:}"
fi
for check in "${port:-}:site" "${admin_port}:admin"; do
	p="${check%%:*}"
	[[ -n "$p" && "$p" =~ ^[0-9]+$ ]] || continue
	if listening 127.0.0.1 "$p" || listening ::1 "$p"; then
		what="KEYBRAKE_LISTEN=${KEYBRAKE_LISTEN}"
		[[ "${check#*:}" == admin ]] && what="KEYBRAKE_ADMIN=${admin} (Caddy's admin endpoint)"
		cat >&2 <<MSG
Keybrake not started: port ${p} is already in use (${what}).
Another Keybrake (an earlier 'make run') may be running: stop it with Ctrl-C
in its terminal. Or choose other ports, e.g.
  KEYBRAKE_LISTEN=:8081 make run
MSG
		exit 1
	fi
done

# KEYBRAKE_LISTEN names the site; Caddy still listens on every address
# unless told where (bind). An IP address or localhost means that address.
if [[ -z "${KEYBRAKE_BIND:-}" ]]; then
	case "$host" in
	localhost) export KEYBRAKE_BIND=127.0.0.1 ;;
	\[*\]) export KEYBRAKE_BIND="${host:1:${#host}-2}" ;;
	*[!0-9.]* | "") ;;
	*) export KEYBRAKE_BIND="$host" ;;
	esac
fi

scheme=http
if [[ "$KEYBRAKE_LISTEN" != http://* && "$KEYBRAKE_LISTEN" != https://* && -n "$host" ]]; then
	# Caddy's rule: a site address with a host (an IP address, localhost
	# or a name) and no scheme is served over HTTPS; for an IP address or
	# localhost with a certificate from Caddy's own internal CA, which
	# clients do not trust.
	scheme=https
	cat <<MSG
Note: KEYBRAKE_LISTEN=${KEYBRAKE_LISTEN} has a host and no scheme, so Caddy serves it
over HTTPS (for an IP address or localhost with its internal certificate,
which SDKs will not trust). For plain HTTP on that address, use
  KEYBRAKE_LISTEN=http://${listen} make run

MSG
fi
base="${scheme}://${host:-localhost}:${port:-443}"
[[ "$KEYBRAKE_LISTEN" == http://* ]] && base="http://${host:-localhost}:${port:-80}"
cat <<MSG
Keybrake is starting on ${KEYBRAKE_LISTEN}${KEYBRAKE_BIND:+, listening on ${KEYBRAKE_BIND} only} (ledger: ${KEYBRAKE_LEDGER%%\?*})

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
echo "Stop it with Ctrl-C. The ledger (${KEYBRAKE_LEDGER%%\?*}) is kept between runs."
echo
exec bin/caddy run --config Caddyfile.example --adapter caddyfile
