package simvendor

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Messages, after https://www.twilio.com/docs/messaging/api/message-resource:
//
//   - POST Messages(.json|.xml|): To, and From or MessagingServiceSid, and
//     Body, MediaUrl (1–10) or ContentSid are required; a Body over 1600
//     characters is refused (21617).
//   - an SMS costs SMSSegments(Body) × Config.TwilioSMSPrice; a message
//     with any MediaUrl (or SendAsMms=true) is one MMS at
//     Config.TwilioMMSPrice; a ContentSid message is priced on its template
//     body (Config.TwilioContentTemplates) with ContentVariables filled in.
//   - the price is null when created (status "queued", or "accepted" with a
//     MessagingServiceSid) and set when fetched later (status "sent").
//
// Simplifications (the referee's bias): a parameter sent more than once is
// priced by its costliest value (the Body with most segments), though
// Twilio reads one; WhatsApp and other channels are priced as SMS; every
// destination has the same price; scheduled sends are priced when created.
type twilioMessage struct {
	sid, account, to, from, body, service string
	segments, media                       int
	micros                                int64
	created                               time.Time
}

func (m *twilioMessage) render(now time.Time) map[string]any {
	status, price := "queued", any(nil)
	if m.service != "" {
		status = "accepted"
	}
	var sent any
	if now.After(m.created) {
		status, price, sent = "sent", twilioPrice(m.micros), rfc2822(m.created)
	}
	return map[string]any{"sid": m.sid, "account_sid": m.account, "to": m.to, "from": nullable(m.from),
		"body": m.body, "status": status, "num_segments": itoa(int64(m.segments)), "num_media": itoa(int64(m.media)),
		"direction": "outbound-api", "api_version": "2010-04-01", "price": price, "price_unit": "USD",
		"messaging_service_sid": nullable(m.service), "error_code": nil, "error_message": nil,
		"date_created": rfc2822(m.created), "date_updated": rfc2822(m.created), "date_sent": sent,
		"uri":              "/2010-04-01/Accounts/" + m.account + "/Messages/" + m.sid + ".json",
		"subresource_uris": map[string]any{"media": "/2010-04-01/Accounts/" + m.account + "/Messages/" + m.sid + "/Media.json"}}
}

func twilioCreateMessage(c *twReq) (any, *twilioError) {
	f := c.form
	if f.Get("To") == "" {
		return nil, twErr(http.StatusBadRequest, 21604, "A 'To' phone number is required.")
	}
	if f.Get("From") == "" && f.Get("MessagingServiceSid") == "" {
		return nil, twErr(http.StatusBadRequest, 21603, "A 'From' phone number is required.")
	}
	media := 0
	for _, u := range f["MediaUrl"] {
		if u != "" {
			media++
		}
	}
	if media > 10 {
		return nil, twErr(http.StatusBadRequest, 21623, "Number of media files exceeds allowed limit of 10.")
	}
	body, segments := "", 0
	for _, b := range f["Body"] {
		if n, _ := SMSSegments(b); b != "" && (n > segments || body == "") {
			body, segments = b, n
		}
	}
	if sid := f.Get("ContentSid"); sid != "" {
		tpl, ok := c.s.cfg.TwilioContentTemplates[sid]
		if !ok {
			return nil, twErr(http.StatusBadRequest, 21655, "The ContentSid is Invalid.")
		}
		filled, e := fillTemplate(tpl, f.Get("ContentVariables"))
		if e != nil {
			return nil, e
		}
		body, segments = filled, 0
		segments, _ = SMSSegments(filled)
	}
	if body == "" && media == 0 {
		return nil, twErr(http.StatusBadRequest, 21602, "Message body is required.")
	}
	if len([]rune(body)) > 1600 {
		return nil, twErr(http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit.")
	}
	// Twilio keeps a number in its E.164 form: without the spaces around
	// it (a form's "+" is a space). Its list filters by that form.
	m := &twilioMessage{account: c.acct.sid, to: strings.TrimSpace(f.Get("To")), from: f.Get("From"), body: body,
		service: f.Get("MessagingServiceSid"), media: media, created: c.now}
	mms := media > 0 || f.Get("SendAsMms") == "true"
	if mms {
		m.sid, m.segments, m.micros = c.s.twilioSID("MM"), 1, c.s.cfg.TwilioMMSPrice
		c.s.record(Event{Vendor: VendorTwilio, Account: c.acct.sid, Object: m.sid, Kind: KindMMS,
			Micros: m.micros, Amount: 1, Unit: "mms", Note: "to " + m.to})
	} else {
		if segments == 0 {
			segments = 1
		}
		m.sid, m.segments = c.s.twilioSID("SM"), segments
		m.micros = int64(segments) * c.s.cfg.TwilioSMSPrice
		c.s.record(Event{Vendor: VendorTwilio, Account: c.acct.sid, Object: m.sid, Kind: KindSMS,
			Micros: m.micros, Amount: int64(segments), Unit: "segment", Note: "to " + m.to})
	}
	c.acct.messages.put(m.sid, m)
	return m.render(c.now), nil
}

// fillTemplate replaces {{key}} placeholders with ContentVariables (a JSON
// object of strings).
func fillTemplate(tpl, vars string) (string, *twilioError) {
	if vars == "" {
		return tpl, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(vars), &m); err != nil {
		return "", twErr(http.StatusBadRequest, 21656, "The ContentVariables Parameter is invalid.")
	}
	for k, v := range m {
		tpl = strings.ReplaceAll(tpl, "{{"+k+"}}", v)
	}
	return tpl, nil
}

func twilioFetchMessage(c *twReq) (any, *twilioError) {
	m, ok := c.acct.messages.get(c.rest[1])
	if !ok {
		return nil, twErr(http.StatusNotFound, 20404, "The requested resource /2010-04-01/Accounts/%s/Messages/%s.json was not found", c.acct.sid, c.rest[1])
	}
	return m.render(c.now), nil
}

// twilioListMessages is GET Messages.json, newest first, filtered by To and
// From (exact) with PageSize (default 50, at most 1000), one page: the
// envelope Twilio's list answers have. DateSent filters are not simulated.
func twilioListMessages(c *twReq) (any, *twilioError) {
	size := 50
	if v := c.query.Get("PageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return nil, twErr(http.StatusBadRequest, 20001, "Invalid PageSize")
		}
		size = n
	}
	to, from := c.query.Get("To"), c.query.Get("From")
	list := []any{}
	more := false
	for _, m := range c.acct.messages.newestFirst() {
		if (to != "" && m.to != to) || (from != "" && m.from != from) {
			continue
		}
		if len(list) == size {
			more = true
			break
		}
		list = append(list, m.render(c.now))
	}
	uri := "/2010-04-01/Accounts/" + c.acct.sid + "/Messages.json"
	var next any
	if more {
		next = uri + "?Page=1&PageSize=" + strconv.Itoa(size)
	}
	return map[string]any{"messages": list, "page": 0, "page_size": size, "start": 0, "end": max(len(list)-1, 0),
		"uri": uri, "first_page_uri": uri + "?Page=0&PageSize=" + strconv.Itoa(size), "next_page_uri": next,
		"previous_page_uri": nil}, nil
}
