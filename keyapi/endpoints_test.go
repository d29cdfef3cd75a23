package keyapi

import (
	"strings"
	"testing"
)

func TestParseEndpoint(t *testing.T) {
	good := map[string]string{
		"POST /v1/payment_intents":                  "POST /v1/payment_intents",
		"GET /v1/customers/*":                       "GET /v1/customers/*",
		"GET /v1/payment_intents/*/confirm":         "GET /v1/payment_intents/*/confirm",
		"POST /2010-04-01/Accounts/*/Messages.json": "POST /2010-04-01/Accounts/*/Messages.json",
		"  DELETE   /emails/*  ":                    "DELETE /emails/*",
		"GET /":                                     "GET /",
		"PUT /v1/x/":                                "PUT /v1/x/",
		"PATCH /a-b_c.d~e/f:g@h/!$&'()+,;=":         "PATCH /a-b_c.d~e/f:g@h/!$&'()+,;=",
		"HEAD /*":                                   "HEAD /*",
		"OPTIONS /v1/*/*":                           "OPTIONS /v1/*/*",
	}
	for in, want := range good {
		got, err := parseEndpoint(in)
		if err != nil || got != want {
			t.Errorf("parseEndpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "POST", "/v1/x", "post /v1/x", "Post /v1/x", "* /v1/x", "CONNECT /x", "TRACE /x",
		"POST v1/x", "POST *", "GET /v1/cus*", "GET /v1/**", "GET /v1//x", "GET //", "GET /v1/./x",
		"GET /v1/..", "GET /v1/x?y=1", "GET /v1/x#f", "GET /v1/%41", "GET /v1/a\\b", "GET /v1/é",
		"GET /a /b", "GET /v1/\x00", "GET /" + strings.Repeat("a", maxEndpointLength),
	} {
		if got, err := parseEndpoint(in); err == nil {
			t.Errorf("parseEndpoint(%q) = %q, want an error", in, got)
		}
	}
}
