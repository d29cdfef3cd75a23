package simvendor

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Twilio's REST API (api.twilio.com/2010-04-01), after
// https://www.twilio.com/docs/usage/api and
// https://www.twilio.com/docs/usage/twilios-response:
//
//   - HTTP Basic with AccountSid:AuthToken, or an API key's SID:secret; a
//     wrong credential is 401 {"code":20003,"message":"Authenticate",…}.
//   - a resource answers with or without an extension: ".json" gives JSON;
//     ".xml" and no extension give XML (Twilio's documented default).
//   - Idempotency-Key is ignored: every POST executes.
//   - an account's credentials reach its own resources and those of its
//     sub-accounts; another account's path is 404 (20404).
type twilioState struct {
	accounts map[string]*twilioAccount
	keys     map[string]*twilioKey // API keys (SK…) by SID
	signing  map[string]*twilioKey // signing keys, not REST credentials
}

type twilioAccount struct {
	sid, token, friendlyName, owner string
	created                         time.Time
	messages                        store[*twilioMessage]
	calls                           store[*voiceCall]
}

type twilioKey struct {
	sid, secret, account, friendlyName string
	created                            time.Time
}

func newTwilioState(cfg Config) *twilioState {
	st := &twilioState{accounts: map[string]*twilioAccount{}, keys: map[string]*twilioKey{}, signing: map[string]*twilioKey{}}
	if cfg.TwilioAccountSID != "" {
		st.accounts[cfg.TwilioAccountSID] = &twilioAccount{sid: cfg.TwilioAccountSID, token: cfg.TwilioAuthToken,
			friendlyName: "Simulated account"}
	}
	return st
}

// twilioError is Twilio's error shape.
type twilioError struct {
	status int
	code   int
	msg    string
}

func (e *twilioError) fields() map[string]any {
	return map[string]any{"code": e.code, "message": e.msg,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", e.code), "status": e.status}
}

func twErr(status, code int, format string, args ...any) *twilioError {
	return &twilioError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// twReq is one Twilio request being executed.
type twReq struct {
	s       *Sim
	auth    *twilioAccount // the account the credential belongs to
	acct    *twilioAccount // the account in the path
	form    url.Values
	query   url.Values // the URL's, for list filters
	method  string
	rest    []string // path segments after Accounts/{sid}
	xmlName string   // element name of the resource, for XML answers
	now     time.Time
}

// Twilio returns the simulated api.twilio.com.
func (s *Sim) Twilio() http.Handler { return http.HandlerFunc(s.serveTwilio) }

func (s *Sim) serveTwilio(w http.ResponseWriter, r *http.Request) {
	body := s.receive(VendorTwilio, r)
	s.mu.Lock()
	defer s.mu.Unlock()
	path, asJSON := r.URL.Path, false
	switch {
	case strings.HasSuffix(path, ".json"):
		path, asJSON = strings.TrimSuffix(path, ".json"), true
	case strings.HasSuffix(path, ".xml"):
		path = strings.TrimSuffix(path, ".xml")
	}
	fail := func(e *twilioError) { writeTwilio(w, asJSON, e.status, "RestException", e.fields()) }
	auth := s.twilioAuth(r)
	if auth == nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		fail(twErr(http.StatusUnauthorized, 20003, "Authenticate"))
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		fail(twErr(http.StatusBadRequest, 20001, "Unable to parse the request body"))
		return
	}
	c := &twReq{s: s, auth: auth, form: form, query: r.URL.Query(), method: r.Method, now: s.now()}
	segs := strings.Split(strings.TrimPrefix(path, "/2010-04-01/"), "/")
	var fn func(*twReq) (any, *twilioError)
	switch {
	case !strings.HasPrefix(path, "/2010-04-01/") || segs[0] != "Accounts":
	case len(segs) == 1 && r.Method == http.MethodPost:
		fn, c.xmlName = twilioCreateSubaccount, "Account"
	case len(segs) >= 2:
		acct, ok := s.twilio.accounts[segs[1]]
		if !ok || (acct != auth && acct.owner != auth.sid) {
			fail(twErr(http.StatusNotFound, 20404, "The requested resource %s was not found", r.URL.Path))
			return
		}
		c.acct, c.rest = acct, segs[2:]
		fn = twilioRoute(c)
	}
	if fn == nil {
		s.problem("twilio: unsimulated endpoint " + r.Method + " " + r.URL.Path)
		fail(twErr(http.StatusNotFound, 20404, "The requested resource %s was not found", r.URL.Path))
		return
	}
	s.beforeExecute(VendorTwilio, r)
	c.now = s.now()
	out, e := fn(c)
	if e != nil {
		fail(e)
		return
	}
	status := http.StatusOK
	if r.Method == http.MethodPost && len(c.rest)%2 == 1 || len(segs) == 1 {
		status = http.StatusCreated
	}
	writeTwilio(w, asJSON, status, c.xmlName, out)
}

// twilioRoute picks the handler for the path under an account.
func twilioRoute(c *twReq) func(*twReq) (any, *twilioError) {
	post, get := c.method == http.MethodPost, c.method == http.MethodGet
	switch {
	case len(c.rest) == 0 && get:
		c.xmlName = "Account"
		return twilioFetchAccount
	case len(c.rest) == 1 && c.rest[0] == "Messages" && post:
		c.xmlName = "Message"
		return twilioCreateMessage
	case len(c.rest) == 1 && c.rest[0] == "Messages" && get:
		c.xmlName = "Messages"
		return twilioListMessages
	case len(c.rest) == 2 && c.rest[0] == "Messages" && get:
		c.xmlName = "Message"
		return twilioFetchMessage
	case len(c.rest) == 1 && c.rest[0] == "Calls" && post:
		c.xmlName = "Call"
		return twilioCreateCall
	case len(c.rest) == 2 && c.rest[0] == "Calls" && (get || post):
		c.xmlName = "Call"
		if post {
			return twilioUpdateCall
		}
		return twilioFetchCall
	case len(c.rest) == 1 && (c.rest[0] == "Keys" || c.rest[0] == "SigningKeys") && post:
		c.xmlName = strings.TrimSuffix(c.rest[0], "s")
		return twilioCreateKey
	}
	return nil
}

// twilioAuth returns the account a Basic credential belongs to, or nil.
func (s *Sim) twilioAuth(r *http.Request) *twilioAccount {
	user, pass, ok := r.BasicAuth()
	if !ok || user == "" || pass == "" {
		return nil
	}
	if a, ok := s.twilio.accounts[user]; ok && a.token == pass {
		return a
	}
	if k, ok := s.twilio.keys[user]; ok && k.secret == pass {
		return s.twilio.accounts[k.account]
	}
	return nil
}

func rfc2822(t time.Time) string { return t.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700") }

// writeTwilio answers in JSON, or in XML inside <TwilioResponse>.
func writeTwilio(w http.ResponseWriter, asJSON bool, status int, name string, v any) {
	if asJSON {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	var b strings.Builder
	b.WriteString(xml.Header + "<TwilioResponse>")
	writeXML(&b, name, v)
	b.WriteString("</TwilioResponse>")
	_, _ = w.Write([]byte(b.String()))
}

// writeXML renders v the way Twilio's XML does: snake_case keys become
// CamelCase elements. Minimal: nested maps become nested elements.
func writeXML(b *strings.Builder, name string, v any) {
	if o, ok := v.(obj); ok {
		v = map[string]any(o)
	}
	b.WriteString("<" + name + ">")
	switch x := v.(type) {
	case nil:
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			writeXML(b, camel(k), x[k])
		}
	default:
		_ = xml.EscapeText(&stringWriter{b}, []byte(fmt.Sprint(x)))
	}
	b.WriteString("</" + name + ">")
}

type stringWriter struct{ b *strings.Builder }

func (w *stringWriter) Write(p []byte) (int, error) { return w.b.Write(p) }

func camel(k string) string {
	parts := strings.Split(k, "_")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "")
}

func twilioFetchAccount(c *twReq) (any, *twilioError) { return c.acct.render(), nil }

func (a *twilioAccount) render() map[string]any {
	typ := "Full"
	var owner any = a.sid
	if a.owner != "" {
		owner = a.owner
	}
	return map[string]any{"sid": a.sid, "friendly_name": a.friendlyName, "status": "active", "type": typ,
		"owner_account_sid": owner, "date_created": rfc2822(a.created), "date_updated": rfc2822(a.created),
		"uri": "/2010-04-01/Accounts/" + a.sid + ".json"}
}
