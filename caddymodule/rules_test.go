package caddymodule

import (
	"strings"
	"testing"
)

// TestDefaultRulesCaddyfile: a vendor block's default_rules adapt to the
// rules JSON the key API applies to keys issued without rules; a subject
// the vendor's calls never carry is refused when the app provisions.
func TestDefaultRulesCaddyfile(t *testing.T) {
	raw, err := adaptVendors(t, `
		vendor twilio {
			account_sid AC123
			auth_token tok
			default_rules {
				to_country US CA
				rate 30/1m
				max_call_usd 2.5
			}
		}
		vendor stripe {
			secret_key sk_test_x
			default_rules {
				allow customer cus_A cus_B
				once_per customer
				max_calls 50
			}
		}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"default_rules":{"allow":{"to_country":["US","CA"]},"max_call_usd":2.5,"rate":"30/1m"}`,
		`"default_rules":{"allow":{"customer":["cus_A","cus_B"]},"max_calls":50,"once_per":"customer"}`,
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("adapted JSON lacks %s:\n%s", want, raw)
		}
	}
	app, err := provisionJSON(t, raw)
	if err != nil {
		t.Fatal(err)
	}
	if d := app.defaultRules(); d["twilio"] == nil || d["stripe"].OncePer != "customer" {
		t.Errorf("default rules %v", d)
	}
	if s := app.vendorSubjects(); strings.Join(s["twilio"], ",") != "to,to_country" {
		t.Errorf("twilio subjects %v", s["twilio"])
	}

	for body, want := range map[string]string{
		`vendor twilio {
			default_rules {
				customer cus_A
			}
		}`: `carry no subject "customer"`,
		`vendor twilio {
			default_rules {
				rate fast
			}
		}`: `rate "fast"`,
	} {
		raw, err := adaptVendors(t, body)
		if err == nil {
			_, err = provisionJSON(t, raw)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v; want %q", body, err, want)
		}
	}
}
