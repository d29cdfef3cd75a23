package resend

import (
	"fmt"
	"strings"

	"github.com/keybrake/keybrake/vendors"
)

// Recipient counting: Resend bills every To, Cc and Bcc address as an
// email. A field may be a string or an array of strings, and Resend reads
// a string "a@x, b@y" as two addresses, so every comma-separated address is
// counted. What Keybrake cannot read with certainty (a quoted display name
// that may hold a comma, a part with no or two "@", a field in another
// letter case, a key given twice) is refused, never counted low.

// errUncertain is a request whose recipients cannot be counted with
// certainty.
type errUncertain string

func (e errUncertain) Error() string { return string(e) }

// countSend counts the recipients of a POST /emails body.
func countSend(raw []byte) (int64, error) {
	v, err := vendors.DecodeJSON(raw)
	if err != nil {
		return 0, err
	}
	email, ok := v.(map[string]any)
	if !ok {
		return 0, errUncertain("the email must be a JSON object")
	}
	return countEmail(email, "")
}

// countBatch counts the recipients of every email of a POST /emails/batch
// body (a JSON array of emails): one count per email, in order.
func countBatch(raw []byte) ([]int64, error) {
	v, err := vendors.DecodeJSON(raw)
	if err != nil {
		return nil, err
	}
	list, ok := v.([]any)
	if !ok {
		return nil, errUncertain("a batch must be a JSON array of emails")
	}
	counts := make([]int64, 0, len(list))
	for i, el := range list {
		email, ok := el.(map[string]any)
		if !ok {
			return nil, errUncertain(fmt.Sprintf("email %d of the batch is not a JSON object", i))
		}
		c, err := countEmail(email, fmt.Sprintf("email %d: ", i))
		if err != nil {
			return nil, err
		}
		counts = append(counts, c)
	}
	return counts, nil
}

// countEmail counts one email's to, cc and bcc addresses.
func countEmail(email map[string]any, where string) (int64, error) {
	var n int64
	for k, v := range email {
		field := strings.ToLower(k)
		if field != "to" && field != "cc" && field != "bcc" {
			continue
		}
		if k != field {
			return 0, errUncertain(where + "write the field " + field + " in lower case")
		}
		c, err := countField(v)
		if err != nil {
			return 0, errUncertain(where + field + ": " + err.Error())
		}
		n += c
	}
	return n, nil
}

// countField counts the addresses of a to, cc or bcc value.
func countField(v any) (int64, error) {
	switch t := v.(type) {
	case nil:
		return 0, nil
	case string:
		return countAddresses(t)
	case []any:
		var n int64
		for _, el := range t {
			s, ok := el.(string)
			if !ok {
				return 0, errUncertain("every recipient must be a string")
			}
			c, err := countAddresses(s)
			if err != nil {
				return 0, err
			}
			n += c
		}
		return n, nil
	default:
		return 0, errUncertain("want a string or an array of strings")
	}
}

// countAddresses counts the comma-separated addresses in one string.
func countAddresses(s string) (int64, error) {
	if strings.ContainsAny(s, "\"\\;()\r\n") {
		return 0, errUncertain("Keybrake cannot count addresses with quotes, comments, semicolons or line breaks; send one plain address per array element")
	}
	var n int64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.Count(part, "@") != 1 {
			return 0, errUncertain("Keybrake cannot tell how many addresses " + quote(part) + " holds")
		}
		n++
	}
	return n, nil
}

func quote(s string) string {
	if r := []rune(s); len(r) > 40 {
		s = string(r[:40]) + "…"
	}
	return fmt.Sprintf("%q", s)
}
