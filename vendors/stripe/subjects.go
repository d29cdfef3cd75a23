package stripe

import (
	"github.com/keybrake/keybrake/vendors"
	"net/url"
	"strings"

	keyrules "github.com/keybrake/keybrake/rules"
)

// Subjects of a Stripe call, as rules name them.
const (
	// SubjectCustomer is the customer a call charges or refunds: the
	// request's customer parameter on a create, the object's customer on
	// a confirm, capture or refund (read at Stripe with the lookup that
	// prices it), the new one on an update that changes it.
	SubjectCustomer = "customer"
	// SubjectCurrency is the currency the call moves money in, in lower
	// case as Stripe writes it: the request's on a create, the object's
	// otherwise.
	SubjectCurrency = "currency"
)

// SubjectNames are the subjects a Stripe call may carry.
var SubjectNames = []string{SubjectCustomer, SubjectCurrency}

// subjects builds the subjects of a call from its customer and currency,
// leaving out the ones that are empty.
func subjects(customer, currency string) keyrules.Subjects {
	s := keyrules.Subjects{}
	if customer = strings.TrimSpace(customer); customer != "" {
		s[SubjectCustomer] = []string{customer}
	}
	if currency = strings.TrimSpace(currency); currency != "" {
		s[SubjectCurrency] = []string{keyrules.Canonical(SubjectCurrency, currency)}
	}
	return s
}

// formCustomer is the request's customer parameter; "" when absent or given
// twice (the estimate refuses a duplicate amount or currency; a customer
// Keybrake cannot read with certainty is as good as absent, and a rule
// naming it refuses the call).
func formCustomer(form url.Values) string {
	if vs := form[SubjectCustomer]; len(vs) == 1 {
		return vs[0]
	}
	return ""
}

// SubjectNames implements vendors.SubjectNamer.
func (v *Vendor) SubjectNames() []string { return SubjectNames }

// Interface guard.
var _ vendors.SubjectNamer = (*Vendor)(nil)
