// Windmill for-each step: send one SMS through Keybrake's Twilio route with
// the run's vault key as the Basic password (the username is ignored:
// Keybrake puts the real account SID in the path and the real auth token in
// the header). The real Twilio credentials never reach Windmill.
//
// Not retried: Twilio has no idempotency key, so a retry after a timeout
// could send the message twice. A cap hit (429, X-Keybrake-Cap-Hit: true)
// fails the item, the loop and the flow, and the error handler revokes the run.

import { isCapHit } from "./retry.ts";

// `message` is typed inline: a named type would become a resource type in
// Windmill's parser.
export async function main(
  keybrake_url: string,
  vault_key: string,
  run_label: string,
  from_number: string,
  message: { id: string; to: string; body: string },
) {
  const url = `${keybrake_url.replace(/\/+$/, "")}/2010-04-01/Accounts/ACkeybrake/Messages.json`;
  const res = await fetch(url, {
    method: "POST",
    headers: {
      Authorization: `Basic ${btoa(`ACkeybrake:${vault_key}`)}`,
      "Content-Type": "application/x-www-form-urlencoded",
    },
    body: new URLSearchParams({ To: message.to, From: from_number, Body: message.body }),
  });
  if (!res.ok) {
    const detail = await res.text();
    if (isCapHit({ status: res.status, headers: res.headers })) {
      throw new Error(`Keybrake cap hit on message ${message.id} (${run_label}): ${detail}`);
    }
    throw new Error(`message ${message.id} refused: ${res.status} ${detail}`);
  }
  const sent = await res.json();
  return { message_id: message.id, sid: sent.sid, status: sent.status };
}
