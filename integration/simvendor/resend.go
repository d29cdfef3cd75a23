package simvendor

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Resend's API (api.resend.com), after https://resend.com/docs/api-reference
// and its errors page (https://resend.com/docs/api-reference/errors):
//
//   - Authorization: Bearer <key>; none is 401 missing_api_key, a wrong one
//     403 invalid_api_key; a sending_access key elsewhere than sending is
//     401 restricted_api_key. Errors are {"statusCode","message","name"}.
//   - Idempotency-Key on POST /emails and /emails/batch: kept 24 hours; the
//     same key and payload answers the first response again without
//     sending; another payload is 409 invalid_idempotent_request; a key
//     whose first request is still running is 409
//     concurrent_idempotent_requests; a key outside 1–256 characters is 400
//     invalid_idempotency_key
//     (https://resend.com/docs/dashboard/emails/idempotency-keys).
//     Simplification: only successful responses are kept (the docs describe
//     replays of sent emails only), so a failed request can be retried.
//   - A body that is not JSON is 400 validation_error. Resend's docs do not
//     show this case; the status is the simulator's choice. A form-encoded
//     body is read as form fields (a repeated "to" is several recipients):
//     the referee assumes the worst.
type resendState struct {
	keys   map[string]*resendKey // by token
	emails store[*resendEmail]
}

type resendKey struct {
	id, name, permission string
	created              time.Time
}

func newResendState(cfg Config) *resendState {
	st := &resendState{keys: map[string]*resendKey{}}
	if cfg.ResendAPIKey != "" {
		st.keys[cfg.ResendAPIKey] = &resendKey{id: "configured", name: "configured", permission: "full_access"}
	}
	return st
}

type resendError struct {
	status int
	name   string
	msg    string
}

func rsErr(status int, name, msg string) *resendError {
	return &resendError{status: status, name: name, msg: msg}
}

func (e *resendError) body() map[string]any {
	return map[string]any{"statusCode": e.status, "name": e.name, "message": e.msg}
}

// Resend returns the simulated api.resend.com.
func (s *Sim) Resend() http.Handler { return http.HandlerFunc(s.serveResend) }

func (s *Sim) serveResend(w http.ResponseWriter, r *http.Request) {
	body := s.receive(VendorResend, r)
	s.mu.Lock()
	defer s.mu.Unlock()
	fail := func(e *resendError) { writeJSON(w, e.status, e.body()) }
	key, e := s.resendAuth(r)
	if e != nil {
		fail(e)
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	var fn func(s *Sim, body []byte, r *http.Request) (int, any, *resendError)
	idempotent := false
	switch {
	case path == "/emails" && r.Method == http.MethodPost:
		fn, idempotent = resendSend, true
	case path == "/emails/batch" && r.Method == http.MethodPost:
		fn, idempotent = resendBatch, true
	case strings.HasPrefix(path, "/emails/") && r.Method == http.MethodGet:
		fn = resendGetEmail
	case path == "/api-keys" && r.Method == http.MethodPost:
		fn = resendCreateKey
	case path == "/api-keys" && r.Method == http.MethodGet:
		fn = resendListKeys
	case path == "/emails" || path == "/emails/batch" || path == "/api-keys":
		fail(rsErr(http.StatusMethodNotAllowed, "method_not_allowed", "Method is not allowed for the requested path."))
		return
	default:
		s.problem("resend: unsimulated endpoint " + r.Method + " " + r.URL.Path)
		fail(rsErr(http.StatusNotFound, "not_found", "The requested endpoint does not exist."))
		return
	}
	if key.permission == "sending_access" && !idempotent {
		fail(rsErr(http.StatusUnauthorized, "restricted_api_key", "This API key is restricted to only send emails."))
		return
	}
	ikey, hasKey := r.Header["Idempotency-Key"]
	if !idempotent || !hasKey {
		s.beforeExecute(VendorResend, r)
		status, out, e := fn(s, body, r)
		if e != nil {
			fail(e)
			return
		}
		writeJSON(w, status, out)
		return
	}
	k := strings.Join(ikey, ",")
	if len(k) < 1 || len(k) > 256 {
		fail(rsErr(http.StatusBadRequest, "invalid_idempotency_key", "The key must be between 1-256 chars."))
		return
	}
	scope := idemScope{vendor: VendorResend, key: k}
	fp := path + "\n" + canonicalJSON(body)
	if prev := s.idem.lookup(scope, s.now()); prev != nil {
		switch {
		case prev.inFlight:
			fail(rsErr(http.StatusConflict, "concurrent_idempotent_requests", "Same idempotency key used while original request is still in progress."))
		case prev.fingerprint != fp:
			fail(rsErr(http.StatusConflict, "invalid_idempotent_request", "Same idempotency key used with a different request payload."))
		default:
			writeRaw(w, prev.header, prev.status, prev.body)
		}
		return
	}
	s.idem.begin(scope, path, fp, s.now())
	s.beforeExecute(VendorResend, r)
	status, out, e := fn(s, body, r)
	if e != nil {
		s.idem.drop(scope)
		fail(e)
		return
	}
	raw, _ := json.Marshal(out)
	s.idem.save(scope, "", status, http.Header{}, raw)
	writeRaw(w, http.Header{}, status, raw)
}

func (s *Sim) resendAuth(r *http.Request) (*resendKey, *resendError) {
	h := r.Header.Get("Authorization")
	tok := strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))
	if h == "" || tok == "" || !strings.HasPrefix(h, "Bearer ") {
		return nil, rsErr(http.StatusUnauthorized, "missing_api_key", "Missing API key in the authorization header. Include the following header in the request: Authorization: Bearer YOUR_API_KEY")
	}
	k, ok := s.resend.keys[tok]
	if !ok {
		return nil, rsErr(http.StatusForbidden, "invalid_api_key", "API key is invalid")
	}
	return k, nil
}

// canonicalJSON is body with insignificant whitespace and key order
// removed, or body itself when it is not JSON.
func canonicalJSON(body []byte) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return string(body)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	raw, _ := json.Marshal(v)
	writeRaw(w, http.Header{}, status, raw)
}

func resendCreateKey(s *Sim, body []byte, _ *http.Request) (int, any, *resendError) {
	var req struct {
		Name       string `json:"name"`
		Permission string `json:"permission"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return 0, nil, rsErr(http.StatusBadRequest, "validation_error", "The request body must be a JSON object.")
	}
	if req.Name == "" {
		return 0, nil, rsErr(http.StatusUnprocessableEntity, "missing_required_field", "Missing `name` field.")
	}
	switch req.Permission {
	case "":
		req.Permission = "full_access"
	case "full_access", "sending_access":
	default:
		return 0, nil, rsErr(http.StatusUnprocessableEntity, "validation_error", "Invalid `permission` field.")
	}
	k := &resendKey{id: s.resendID(), name: req.Name, permission: req.Permission, created: s.now()}
	tok := "re_" + s.secret("")
	s.resend.keys[tok] = k
	s.record(Event{Vendor: VendorResend, Object: k.id, Kind: KindCredentialMinted, Secret: tok,
		Note: req.Permission + " api key minted"})
	return http.StatusOK, map[string]any{"id": k.id, "token": tok}, nil
}

func resendListKeys(s *Sim, _ []byte, _ *http.Request) (int, any, *resendError) {
	data := []any{}
	for _, k := range s.resend.keys {
		data = append(data, map[string]any{"id": k.id, "name": k.name, "created_at": k.created.UTC().Format(time.RFC3339)})
	}
	return http.StatusOK, map[string]any{"object": "list", "has_more": false, "data": data}, nil
}
