package simvendor

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"
)

// Sending email, after https://resend.com/docs/api-reference/emails/send-email
// and https://resend.com/docs/api-reference/emails/send-batch-emails:
//
//   - POST /emails: from, to and subject are required (422
//     missing_required_field); to, cc and bcc are a string or an array of
//     strings, at most 50 in to. Answer: {"id": …}.
//   - POST /emails/batch: an array of 1–100 such emails, without
//     attachments or scheduled_at. By default (x-batch-validation: strict)
//     one invalid email refuses the whole batch; with permissive the valid
//     ones are sent and the others listed in "errors". Answer:
//     {"data":[{"id": …}, …]}.
//   - price: every To, Cc and Bcc recipient counts as one email ("Multiple
//     To, CC, or BCC recipients in sent emails count as separate emails",
//     https://resend.com/docs/knowledge-base/account-quotas-and-limits), at
//     Config.ResendEmailPrice each.
//
// Simplification (the referee's bias): a recipient string holding several
// addresses separated by commas ("a@x.com, b@y.com") is counted as that
// many recipients. Resend's docs say to send several addresses as an array
// and are silent on such a string. Scheduled emails are priced when
// accepted.
type resendEmail struct {
	id, from, subject string
	to, cc, bcc       []string
	micros            int64
	created           time.Time
}

func (e *resendEmail) render() map[string]any {
	return map[string]any{"object": "email", "id": e.id, "from": e.from, "to": e.to, "cc": e.cc, "bcc": e.bcc,
		"subject": e.subject, "created_at": e.created.UTC().Format(time.RFC3339Nano), "last_event": "delivered"}
}

// emailReq is a send request as decoded from JSON or a form.
type emailReq map[string]any

// recipients reads a string-or-array recipient field.
func (r emailReq) recipients(field string) ([]string, *resendError) {
	var raw []string
	switch v := r[field].(type) {
	case nil:
		return nil, nil
	case string:
		raw = []string{v}
	case []any:
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, rsErr(http.StatusUnprocessableEntity, "validation_error", fmt.Sprintf("Invalid `%s` field.", field))
			}
			raw = append(raw, s)
		}
	default:
		return nil, rsErr(http.StatusUnprocessableEntity, "validation_error", fmt.Sprintf("Invalid `%s` field.", field))
	}
	var out []string
	for _, s := range raw {
		addrs, err := mail.ParseAddressList(s)
		if err != nil {
			parts := strings.Split(s, ",")
			for _, p := range parts {
				if p = strings.TrimSpace(p); p == "" {
					continue
				}
				if _, err := mail.ParseAddress(p); err != nil {
					return nil, rsErr(http.StatusUnprocessableEntity, "validation_error", fmt.Sprintf(
						"Invalid `%s` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.", field))
				}
				out = append(out, p)
			}
			continue
		}
		for _, a := range addrs {
			out = append(out, a.Address)
		}
	}
	return out, nil
}

func (r emailReq) str(field string) string {
	s, _ := r[field].(string)
	return s
}

// validate checks one email and returns its recipients.
func (r emailReq) validate(batch bool) (to, cc, bcc []string, e *resendError) {
	for _, f := range []string{"from", "to", "subject"} {
		if r[f] == nil || r[f] == "" {
			return nil, nil, nil, rsErr(http.StatusUnprocessableEntity, "missing_required_field", fmt.Sprintf("Missing `%s` field.", f))
		}
	}
	if batch && (r["attachments"] != nil || r["scheduled_at"] != nil) {
		return nil, nil, nil, rsErr(http.StatusUnprocessableEntity, "validation_error", "Batch emails do not support `attachments` or `scheduled_at`.")
	}
	if to, e = r.recipients("to"); e != nil {
		return
	}
	if len(to) == 0 {
		return nil, nil, nil, rsErr(http.StatusUnprocessableEntity, "missing_required_field", "Missing `to` field.")
	}
	if len(to) > 50 {
		return nil, nil, nil, rsErr(http.StatusUnprocessableEntity, "validation_error", "Too many recipients in `to`: the maximum is 50.")
	}
	if cc, e = r.recipients("cc"); e != nil {
		return
	}
	bcc, e = r.recipients("bcc")
	return
}

// send accepts one validated email and moves its price.
func (s *Sim) sendEmail(r emailReq, to, cc, bcc []string) *resendEmail {
	n := int64(len(to) + len(cc) + len(bcc))
	em := &resendEmail{id: s.resendID(), from: r.str("from"), subject: r.str("subject"), to: to, cc: cc, bcc: bcc,
		micros: n * s.cfg.ResendEmailPrice, created: s.now()}
	s.resend.emails.put(em.id, em)
	s.record(Event{Vendor: VendorResend, Object: em.id, Kind: KindEmail, Micros: em.micros, Amount: n,
		Unit: "recipient", Note: "email to " + strings.Join(to, ",")})
	return em
}

// decodeEmails reads the body as JSON, or as a form when it is form-encoded.
func decodeEmails(body []byte, r *http.Request) (any, *resendError) {
	var v any
	if err := json.Unmarshal(body, &v); err == nil {
		return v, nil
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if f, err := url.ParseQuery(string(body)); err == nil && len(f) > 0 {
			m := map[string]any{}
			for k, vs := range f {
				if len(vs) == 1 && k != "to" && k != "cc" && k != "bcc" {
					m[k] = vs[0]
					continue
				}
				arr := make([]any, len(vs))
				for i, x := range vs {
					arr[i] = x
				}
				m[k] = arr
			}
			return m, nil
		}
	}
	return nil, rsErr(http.StatusBadRequest, "validation_error", "The request body must be valid JSON.")
}

func resendSend(s *Sim, body []byte, r *http.Request) (int, any, *resendError) {
	v, e := decodeEmails(body, r)
	if e != nil {
		return 0, nil, e
	}
	m, ok := v.(map[string]any)
	if !ok {
		return 0, nil, rsErr(http.StatusUnprocessableEntity, "validation_error", "The request body must be an object.")
	}
	req := emailReq(m)
	to, cc, bcc, e := req.validate(false)
	if e != nil {
		return 0, nil, e
	}
	return http.StatusOK, map[string]any{"id": s.sendEmail(req, to, cc, bcc).id}, nil
}

func resendBatch(s *Sim, body []byte, r *http.Request) (int, any, *resendError) {
	v, e := decodeEmails(body, r)
	if e != nil {
		return 0, nil, e
	}
	arr, ok := v.([]any)
	if !ok {
		return 0, nil, rsErr(http.StatusUnprocessableEntity, "validation_error", "The request body must be an array of emails.")
	}
	if len(arr) == 0 || len(arr) > 100 {
		return 0, nil, rsErr(http.StatusUnprocessableEntity, "validation_error", "A batch holds 1 to 100 emails.")
	}
	permissive := strings.EqualFold(r.Header.Get("x-batch-validation"), "permissive")
	type ok1 struct {
		req         emailReq
		to, cc, bcc []string
	}
	var good []ok1
	errs := []any{}
	for i, x := range arr {
		m, isObj := x.(map[string]any)
		var e *resendError
		var item ok1
		if !isObj {
			e = rsErr(http.StatusUnprocessableEntity, "validation_error", "Each email must be an object.")
		} else {
			item.req = emailReq(m)
			item.to, item.cc, item.bcc, e = item.req.validate(true)
		}
		if e != nil {
			if !permissive {
				e.msg = fmt.Sprintf("emails[%d]: %s", i, e.msg)
				return 0, nil, e
			}
			errs = append(errs, map[string]any{"index": i, "message": e.msg})
			continue
		}
		good = append(good, item)
	}
	data := []any{}
	for _, g := range good {
		data = append(data, map[string]any{"id": s.sendEmail(g.req, g.to, g.cc, g.bcc).id})
	}
	out := map[string]any{"data": data}
	if permissive {
		out["errors"] = errs
	}
	return http.StatusOK, out, nil
}

func resendGetEmail(s *Sim, _ []byte, r *http.Request) (int, any, *resendError) {
	id := strings.TrimPrefix(strings.TrimSuffix(r.URL.Path, "/"), "/emails/")
	em, ok := s.resend.emails.get(id)
	if !ok {
		return 0, nil, rsErr(http.StatusNotFound, "not_found", "Email not found")
	}
	return http.StatusOK, em.render(), nil
}
