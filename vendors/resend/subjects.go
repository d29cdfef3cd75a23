package resend

import (
	"github.com/keybrake/keybrake/vendors"
	"strings"

	"github.com/keybrake/keybrake/rules"
)

// Subjects of a Resend email, as rules name them: every address of its to,
// cc and bcc, and of every email of a batch, in lower case.
const (
	SubjectRecipient       = "recipient"
	SubjectRecipientDomain = "recipient_domain"
)

// SubjectNames are the subjects a Resend call may carry.
var SubjectNames = []string{SubjectRecipient, SubjectRecipientDomain}

// recipientSubjects are the subjects of the addresses an email (or a batch)
// is sent to: each address, and each address's domain, once.
func recipientSubjects(addrs []string) rules.Subjects {
	if len(addrs) == 0 {
		return nil
	}
	var recipients, domains []string
	seen := map[string]bool{}
	for _, a := range addrs {
		a = rules.Canonical(SubjectRecipient, a)
		if !seen[a] {
			seen[a] = true
			recipients = append(recipients, a)
		}
		_, domain, _ := strings.Cut(a, "@")
		if !seen["@"+domain] {
			seen["@"+domain] = true
			domains = append(domains, domain)
		}
	}
	return rules.Subjects{SubjectRecipient: recipients, SubjectRecipientDomain: domains}
}

// bareAddress is the address of one recipient: what is inside its angle
// brackets ("Ann <ann@x.com>"), or the whole of it.
func bareAddress(part string) string {
	if i := strings.LastIndexByte(part, '<'); i >= 0 {
		if j := strings.IndexByte(part[i:], '>'); j > 0 {
			return strings.TrimSpace(part[i+1 : i+j])
		}
	}
	return part
}

// SubjectNames implements vendors.SubjectNamer.
func (v *Vendor) SubjectNames() []string { return SubjectNames }

// Interface guard.
var _ vendors.SubjectNamer = (*Vendor)(nil)
