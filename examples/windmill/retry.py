"""Shared helper (no main): retry transient failures of a vendor call made
through Keybrake, and never retry a cap hit.

Retried: network errors, 409 (idempotency lock), 5xx, and anything Stripe
explicitly marks `Stripe-Should-Retry: true`.
Not retried: `X-Keybrake-Cap-Hit: true` (on any status), 401 (vault key
revoked or expired), `Stripe-Should-Retry: false`, and every other 4xx.

Works with stripe-python errors (e.http_status, e.headers) and with
urllib.error.HTTPError (e.code, e.headers). Standard library only.
"""

import random
import time
import urllib.error


def _headers(err):
    h = getattr(err, "headers", None)
    try:
        return {str(k).lower(): str(v) for k, v in h.items()}
    except AttributeError:
        return {}


def _status(err):
    s = getattr(err, "http_status", None)  # stripe-python
    if s is None and isinstance(err, urllib.error.HTTPError):
        s = err.code
    return s


def _is_network_error(err):
    # stripe.APIConnectionError, matched by name so this file needs no stripe import.
    if any(c.__name__ == "APIConnectionError" for c in type(err).__mro__):
        return True
    return isinstance(err, (ConnectionError, TimeoutError, urllib.error.URLError))


def is_cap_hit(err):
    return _headers(err).get("x-keybrake-cap-hit", "").lower() == "true"


def refused_by_rule(err):
    """The rule that refused the call (X-Keybrake-Rule: once_per, allow, ...),
    or "" when no rule did."""
    return _headers(err).get("x-keybrake-rule", "")


def is_once_per_refusal(err):
    """403 keybrake_rule_denied by the key's once_per rule: this subject (a
    customer) already had its one call in this run."""
    return _status(err) == 403 and refused_by_rule(err) == "once_per"


def should_retry(err):
    if is_cap_hit(err):
        return False  # the cap is final for this key: a retry cannot succeed
    status = _status(err)
    if status == 401:
        return False  # vault key revoked or expired
    hint = _headers(err).get("stripe-should-retry")
    if hint == "false":
        return False
    if hint == "true":
        return True
    if status is None:
        return _is_network_error(err)
    return status == 409 or status >= 500


def call_with_retry(fn, attempts=4, base_delay=0.5, max_delay=8.0):
    """Call fn() until it succeeds, a non-retryable error occurs, or attempts run out."""
    attempt = 1
    while True:
        try:
            return fn()
        except Exception as err:
            if attempt >= attempts or not should_retry(err):
                raise
            delay = min(max_delay, base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            print(f"transient error (status {_status(err)}), retry {attempt}/{attempts - 1} in {delay:.1f}s")
            time.sleep(delay)
            attempt += 1
