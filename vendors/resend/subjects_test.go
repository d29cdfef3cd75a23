package resend

import (
	"slices"
	"testing"
)

// TestEstimateSubjects: every to, cc and bcc of every email of a batch is a
// recipient, with its domain, in lower case.
func TestEstimateSubjects(t *testing.T) {
	v := newVendor(t, Config{})
	r, body := jsonReq("POST", "/emails/batch", `[
		{"from":"a@x.com","to":["Ann <Ann@Example.com>","bob@example.com"],"cc":"c@Other.org","subject":"s","html":"h"},
		{"from":"a@x.com","to":"ann@example.com","bcc":["eve@evil.test"],"subject":"s","html":"h"}]`)
	est, err := v.Estimate(r, body)
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(slices.Values(est.Subjects[SubjectRecipient]))
	if want := []string{"ann@example.com", "bob@example.com", "c@other.org", "eve@evil.test"}; !slices.Equal(got, want) {
		t.Errorf("recipients %v, want %v", got, want)
	}
	domains := slices.Sorted(slices.Values(est.Subjects[SubjectRecipientDomain]))
	if want := []string{"evil.test", "example.com", "other.org"}; !slices.Equal(domains, want) {
		t.Errorf("domains %v, want %v", domains, want)
	}
}
