package twilio

import (
	"testing"
)

func TestTrustedTwiML(t *testing.T) {
	prefixes, err := parseTwiMLPrefixes([]string{"https://twiml.example.com/calls/", "https://static.example.com/ivr", "http://127.0.0.1:8081"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		url  string
		want bool
	}{
		{"https://twiml.example.com/calls/welcome.xml", true},
		{"https://TWIML.example.com/calls/a?x=1", true},
		{"https://twiml.example.com/calls", false},
		{"https://twiml.example.com/callsx/a.xml", false},
		{"https://twiml.example.com/calls/../dial.xml", false},
		{"https://twiml.example.com/calls/%2e%2e/dial.xml", false},
		{"http://twiml.example.com/calls/a.xml", false},
		{"https://twiml.example.com:8443/calls/a.xml", false},
		{"https://user@twiml.example.com/calls/a.xml", false},
		{"https://twiml.example.com.evil.example/calls/a.xml", false},
		{"https://static.example.com/ivr", true},
		{"https://static.example.com/ivr/menu", true},
		{"https://static.example.com/ivrx", false},
		{"http://127.0.0.1:8081", true},
		{"http://127.0.0.1:8081/any", true},
		{"/relative/path", false},
		{"", false},
	}
	for _, c := range cases {
		if got := trustedTwiML(c.url, prefixes); got != c.want {
			t.Errorf("trustedTwiML(%q) = %v, want %v", c.url, got, c.want)
		}
	}
	for _, bad := range []string{"twiml.example.com/calls/", "ftp://x/", "https://x/?q=1", "https://u@x/", "https:///path"} {
		if _, err := parseTwiMLPrefixes([]string{bad}); err == nil {
			t.Errorf("twiml_url %q accepted", bad)
		}
	}
}
