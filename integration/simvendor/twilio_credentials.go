package simvendor

import "net/http"

// Endpoints that mint Twilio credentials. They work in the simulator, so a
// test can show that Keybrake refuses them, and each logs a
// KindCredentialMinted event with the new secret:
//
//   - POST Accounts/{Sid}/Keys: an API key (SK…) and its secret, which from
//     then on authenticate as that account
//     (https://www.twilio.com/docs/iam/api-keys/key-resource-v2010);
//   - POST Accounts/{Sid}/SigningKeys: a signing key (for access tokens, not
//     REST calls) and its secret;
//   - POST Accounts (no account segment): a sub-account (AC…) with its own
//     auth token, reachable by its own credentials and by its owner's
//     (https://www.twilio.com/docs/iam/api/subaccounts).
func twilioCreateKey(c *twReq) (any, *twilioError) {
	k := &twilioKey{sid: c.s.twilioSID("SK"), secret: c.s.secret(""), account: c.acct.sid,
		friendlyName: c.form.Get("FriendlyName"), created: c.now}
	kind := "api key"
	if c.rest[0] == "SigningKeys" {
		c.s.twilio.signing[k.sid] = k
		kind = "signing key"
	} else {
		c.s.twilio.keys[k.sid] = k
	}
	c.s.record(Event{Vendor: VendorTwilio, Account: c.acct.sid, Object: k.sid, Kind: KindCredentialMinted,
		Secret: k.secret, Note: kind + " minted"})
	return map[string]any{"sid": k.sid, "friendly_name": k.friendlyName, "secret": k.secret,
		"date_created": rfc2822(k.created), "date_updated": rfc2822(k.created)}, nil
}

func twilioCreateSubaccount(c *twReq) (any, *twilioError) {
	if c.auth.owner != "" {
		return nil, twErr(http.StatusForbidden, 20003, "Subaccounts cannot create subaccounts")
	}
	a := &twilioAccount{sid: c.s.twilioSID("AC"), token: c.s.secret(""), friendlyName: c.form.Get("FriendlyName"),
		owner: c.auth.sid, created: c.now}
	if a.friendlyName == "" {
		a.friendlyName = "SubAccount Created at " + rfc2822(c.now)
	}
	c.s.twilio.accounts[a.sid] = a
	c.s.record(Event{Vendor: VendorTwilio, Account: a.sid, Object: a.sid, Kind: KindCredentialMinted,
		Secret: a.token, Note: "sub-account of " + c.auth.sid + " created"})
	out := a.render()
	out["auth_token"] = a.token
	return out, nil
}
