package simvendor

import (
	"net/http"
	"strconv"
	"time"
)

// Calls, after https://www.twilio.com/docs/voice/api/call-resource:
//
//   - POST Calls(.json|.xml|): To, From and one of Url, Twiml or
//     ApplicationSid are required. TimeLimit (seconds) bounds the call;
//     without it the account's limit applies (Config.TwilioCallLimitSeconds,
//     default 14400: Twilio's four hours, which an account may raise to 24
//     hours, https://www.twilio.com/en-us/blog/introducing-configurable-call-limits-for-programmable-voice).
//     A TimeLimit above the account's limit is held to it.
//   - Twilio bills voice per started minute. The simulated call is answered
//     at once and lasts its whole TimeLimit (the worst case), so creating it
//     moves ceil(TimeLimit/60) × Config.TwilioVoicePerMinute.
//   - POST Calls/{Sid}: Status=completed or canceled ends a live call (no
//     money back: the worst case was already counted); a larger TimeLimit
//     on a live call moves the added minutes. Updating an ended call is
//     21220.
type voiceCall struct {
	sid, account, to, from string
	limit                  int // seconds
	micros                 int64
	created                time.Time
	ended                  bool
	endedAt                time.Time
}

func (c *voiceCall) live(now time.Time) bool {
	return !c.ended && now.Before(c.created.Add(time.Duration(c.limit)*time.Second))
}

func (c *voiceCall) render(now time.Time) map[string]any {
	status := "in-progress"
	var end, duration, price any
	if !c.live(now) {
		status = "completed"
		at := c.created.Add(time.Duration(c.limit) * time.Second)
		if c.ended && c.endedAt.Before(at) {
			at = c.endedAt
		}
		end, duration, price = rfc2822(at), strconv.Itoa(int(at.Sub(c.created).Seconds())), twilioPrice(c.micros)
	} else if now.Equal(c.created) {
		status = "queued"
	}
	return map[string]any{"sid": c.sid, "account_sid": c.account, "to": c.to, "from": c.from, "status": status,
		"direction": "outbound-api", "api_version": "2010-04-01", "start_time": rfc2822(c.created), "end_time": end,
		"duration": duration, "price": price, "price_unit": "USD", "date_created": rfc2822(c.created),
		"date_updated": rfc2822(now), "uri": "/2010-04-01/Accounts/" + c.account + "/Calls/" + c.sid + ".json"}
}

// callMinutes is the started minutes of a call of sec seconds.
func callMinutes(sec int) int64 { return int64((sec + 59) / 60) }

func (c *twReq) timeLimit() (int, bool, *twilioError) {
	v := c.form.Get("TimeLimit")
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, false, twErr(http.StatusBadRequest, 21218, "Invalid TimeLimit: %s", v)
	}
	if n > c.s.cfg.TwilioCallLimitSeconds {
		n = c.s.cfg.TwilioCallLimitSeconds
	}
	return n, true, nil
}

func twilioCreateCall(c *twReq) (any, *twilioError) {
	f := c.form
	if f.Get("To") == "" {
		return nil, twErr(http.StatusBadRequest, 21201, "No 'To' number is specified")
	}
	if f.Get("From") == "" {
		return nil, twErr(http.StatusBadRequest, 21213, "No 'From' number is specified")
	}
	if f.Get("Url") == "" && f.Get("Twiml") == "" && f.Get("ApplicationSid") == "" {
		return nil, twErr(http.StatusBadRequest, 21205, "Either Url, Twiml or ApplicationSid is required.")
	}
	limit, ok, e := c.timeLimit()
	if e != nil {
		return nil, e
	}
	if !ok {
		limit = c.s.cfg.TwilioCallLimitSeconds
	}
	call := &voiceCall{sid: c.s.twilioSID("CA"), account: c.acct.sid, to: f.Get("To"), from: f.Get("From"),
		limit: limit, created: c.now}
	minutes := callMinutes(limit)
	call.micros = minutes * c.s.cfg.TwilioVoicePerMinute
	c.s.record(Event{Vendor: VendorTwilio, Account: c.acct.sid, Object: call.sid, Kind: KindCall,
		Micros: call.micros, Amount: minutes, Unit: "minute", Note: "call to " + call.to + " for its whole TimeLimit"})
	c.acct.calls.put(call.sid, call)
	return call.render(c.now), nil
}

func (c *twReq) call() (*voiceCall, *twilioError) {
	call, ok := c.acct.calls.get(c.rest[1])
	if !ok {
		return nil, twErr(http.StatusNotFound, 20404, "The requested resource /2010-04-01/Accounts/%s/Calls/%s.json was not found", c.acct.sid, c.rest[1])
	}
	return call, nil
}

func twilioFetchCall(c *twReq) (any, *twilioError) {
	call, e := c.call()
	if e != nil {
		return nil, e
	}
	return call.render(c.now), nil
}

func twilioUpdateCall(c *twReq) (any, *twilioError) {
	call, e := c.call()
	if e != nil {
		return nil, e
	}
	if !call.live(c.now) {
		return nil, twErr(http.StatusBadRequest, 21220, "Call is not in-progress. Cannot redirect.")
	}
	switch st := c.form.Get("Status"); st {
	case "":
	case "completed", "canceled":
		call.ended, call.endedAt = true, c.now
		return call.render(c.now), nil
	default:
		return nil, twErr(http.StatusBadRequest, 21218, "Invalid Status: %s", st)
	}
	limit, ok, e := c.timeLimit()
	if e != nil {
		return nil, e
	}
	if ok && limit > call.limit {
		added := callMinutes(limit) - callMinutes(call.limit)
		call.limit = limit
		if added > 0 {
			m := added * c.s.cfg.TwilioVoicePerMinute
			call.micros += m
			c.s.record(Event{Vendor: VendorTwilio, Account: c.acct.sid, Object: call.sid, Kind: KindCallExtended,
				Micros: m, Amount: added, Unit: "minute", Note: "TimeLimit raised on a live call"})
		}
	} else if ok {
		call.limit = limit // shorter: the call ends sooner, nothing comes back
	}
	return call.render(c.now), nil
}
