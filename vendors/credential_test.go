package vendors

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
)

const vaultKey = "kbAbCdEfGhIjKlMnOpQrStUvWxYz0123456789ABCDEFG"

func basic(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

func TestCredentialExtract(t *testing.T) {
	cases := []struct {
		name   string
		cfg    CredentialConfig
		header map[string][]string
		want   string
		ok     bool
	}{
		{"bearer", CredentialConfig{}, map[string][]string{"Authorization": {"Bearer " + vaultKey}}, vaultKey, true},
		{"bearer lower-case scheme", CredentialConfig{From: FromBearer}, map[string][]string{"Authorization": {"bearer " + vaultKey}}, vaultKey, true},
		{"bearer missing", CredentialConfig{}, nil, "", false},
		{"bearer empty", CredentialConfig{}, map[string][]string{"Authorization": {"Bearer "}}, "", false},
		{"bearer not key-shaped", CredentialConfig{}, map[string][]string{"Authorization": {"Bearer sk-live_123-456-789-000"}}, "", false},
		{"bearer sent as basic", CredentialConfig{}, map[string][]string{"Authorization": {basic(vaultKey, "")}}, "", false},
		{"basic password", CredentialConfig{From: FromBasicPassword}, map[string][]string{"Authorization": {basic("ACanything", vaultKey)}}, vaultKey, true},
		{"basic password empty", CredentialConfig{From: FromBasicPassword}, map[string][]string{"Authorization": {basic(vaultKey, "")}}, "", false},
		{"basic bad base64", CredentialConfig{From: FromBasicPassword}, map[string][]string{"Authorization": {"Basic %%%"}}, "", false},
		{"basic no colon", CredentialConfig{From: FromBasicPassword}, map[string][]string{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(vaultKey))}}, "", false},
		{"basic user", CredentialConfig{From: FromBasicUser}, map[string][]string{"Authorization": {basic(vaultKey, "")}}, vaultKey, true},
		{"header", CredentialConfig{From: FromHeader, Header: "X-Api-Key"}, map[string][]string{"X-Api-Key": {vaultKey}}, vaultKey, true},
		{"header twice", CredentialConfig{From: FromHeader, Header: "X-Api-Key"}, map[string][]string{"X-Api-Key": {vaultKey, vaultKey}}, "", false},
		{"header missing", CredentialConfig{From: FromHeader, Header: "X-Api-Key"}, map[string][]string{"Authorization": {"Bearer " + vaultKey}}, "", false},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodPost, "/v1/x", nil)
		for k, vs := range c.header {
			for _, v := range vs {
				r.Header.Add(k, v)
			}
		}
		got, ok := c.cfg.Extract(r)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: Extract = %q, %v; want %q, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
