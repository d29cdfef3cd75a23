// Package declared is a Vendor driven by configuration: any paid HTTP API
// declared in a Caddyfile `vendor NAME { … }` block (an LLM API, a maps API,
// an SMS gateway) gets the same caps as the built-in vendors without any Go.
//
// A declaration says
//
//   - where the client's SDK puts its credential, which is where it puts the
//     vault key (vendors.CredentialConfig: bearer, basic_password,
//     basic_user, or a named header), and how the real secret goes
//     upstream (vendors.InjectConfig);
//   - per endpoint ("POST /v1/chat/completions"), what the call will cost
//     from its request body: a sum of terms, each a flat amount or a number
//     read from a JSON or form field × a price, a count of items × a price,
//     or a character count ÷ characters-per-unit × a price;
//   - how to read the transaction id and the real cost from the response
//     JSON (paths × prices),
//   - the error format of Keybrake's own refusals ("json", "stripe",
//     "twilio", "resend"), and
//   - whether the vendor honours an idempotency header (IdempotencyConfig):
//     only then is a true replay free.
//
// Money: prices are decimal strings with up to nine decimals, kept in
// nano-dollars (Price), so per-token prices such as $0.00000015 are exact.
// Each term's cost is ceil(quantity × price) in whole micro-dollars; the
// cost is the sum of the terms. Nothing passes through a float.
//
// A declared vendor is made of the pieces every vendor shares, in package
// vendors: the credential helpers (vendors.CredentialConfig, InjectConfig,
// SwapCredential, Scrub) and the error formats (vendors.WriteError and the
// writers it chooses from). No built-in vendor imports this package.
//
// What still needs Go code, and why:
//
//   - Resend: recipients are counted as Resend sends them, POST /api-keys
//     is refused, and a batch whose emails partly failed costs only its
//     share.
//   - Stripe: a cost is an amount in a currency's minor units, converted
//     with exchange rates (zero- and three-decimal currencies), and a
//     PaymentIntent confirmed or captured later must not count twice.
//   - Twilio: a message's cost is its segment count (GSM-7 versus UCS-2
//     encoding, escape characters, multipart headers) × a rate chosen by the
//     destination's longest E.164 prefix; the account SID in the path is
//     rewritten to the real one; the price arrives after the call and is
//     reconciled by a background job.
package declared
