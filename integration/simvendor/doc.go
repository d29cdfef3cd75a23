// Package simvendor is a simulated Stripe, Twilio and Resend that moves money
// the way those vendors document it. It is the referee of Keybrake's cap
// tests: a test sends calls through the gate, the gate forwards them (with
// the real vendor secret) to this simulator, and afterwards the test asks the
// simulator how much money it really moved (Moved) and compares that with
// the vault key's cap.
//
// # What counts as money moved
//
// Every amount is an int64 of USD micro-dollars (1 USD = 1_000_000). A
// non-USD amount is converted with Config.Rates and rounded up to the next
// micro-dollar. Money moves when:
//
//   - Stripe: funds are captured (a PaymentIntent confirmed with automatic
//     capture, a manual capture, a Charge created with capture=true or
//     captured later), a refund is created (money leaving the account counts
//     as moved too), a Transfer or Payout is created, an invoice is paid
//     (by /pay, by a subscription charging its first or a renewal invoice, or
//     by the automatic collection of an auto_advance draft), a Treasury
//     OutboundPayment or OutboundTransfer is created.
//     An authorisation (manual capture, capture=false) is a hold, not money
//     moved: it is reported by Authorized, and becomes money only when
//     captured.
//   - Twilio: a message is created (segments × SMS price, or the MMS price),
//     a call is created (its whole TimeLimit, rounded up to started minutes,
//     × the per-minute price: the worst case), or a live call's TimeLimit is
//     raised (the added minutes).
//   - Resend: an email is accepted (each To, Cc and Bcc recipient × the
//     per-email price), alone or in a batch.
//
// Endpoints that mint credentials (Twilio Keys, SigningKeys and
// sub-accounts, Resend api-keys) and Stripe Issuing cards move nothing but
// are logged as events (KindCredentialMinted, KindCardIssued) so a test can
// show that they were reached.
//
// # The referee's bias
//
// Where a vendor's documentation leaves a choice open, the simulator takes
// the reading that moves the most money, so that a cap test can only err on
// the side of failing: every customer has a working card, a call lasts its
// whole TimeLimit, a comma-separated Resend "to" string is several
// recipients, a repeated Twilio Body is priced by its longest value. Each
// file says what it simplifies and which document it follows.
//
// # Endpoints simulated
//
// Stripe (Sim.Stripe; form-encoded, Stripe-Account scopes objects and
// idempotency keys): /v1/payment_intents (create, list, search, retrieve,
// update, confirm, capture, cancel, increment_authorization), /v1/charges
// (create, list, retrieve, update, capture), /v1/refunds, /v1/transfers,
// /v1/payouts, /v1/treasury/outbound_payments, /v1/treasury/outbound_transfers,
// /v1/issuing/cards, /v1/customers, /v1/products, /v1/payment_methods
// (create, retrieve, update, attach, detach), /v1/prices, /v1/invoiceitems,
// /v1/invoices (create, list, retrieve, update, delete, finalize, pay, void),
// /v1/subscriptions (create, list, retrieve, update, cancel).
//
// Twilio (Sim.Twilio; each with .json, .xml or no extension):
// /2010-04-01/Accounts (create a sub-account), Accounts/{Sid} (fetch),
// Accounts/{Sid}/Messages (create), Messages/{Sid} (fetch), Calls (create),
// Calls/{Sid} (fetch, update), Keys and SigningKeys (create).
//
// Resend (Sim.Resend): POST /emails, POST /emails/batch, GET /emails/{id},
// POST and GET /api-keys.
//
// Any other endpoint answers the vendor's own "not found" and is listed by
// Problems: a cap test that reaches it should fail, since the referee cannot
// say what real money it would have moved.
//
// # Time
//
// Config.Now is the only clock. Idempotency keys expire after 24 hours of
// it; Stripe subscriptions renew, auto_advance drafts are collected an hour
// after creation and uncaptured authorisations lapse after 7 days, all
// evaluated lazily whenever the simulator is called (a request, Moved,
// Events, Authorized).
package simvendor
