package ledgertest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// Comparisons are field by field so that representation details a backend
// may legitimately change do not fail the suite: JSON is compared by value
// (Postgres jsonb reorders keys), times with Equal, nil and empty lists alike.
// Every time a store returns must be in UTC.

func keyDiff(got, want ledger.Key) string {
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("%s = %v; want %v", field, g, w)) }
	if got.ID != want.ID {
		add("ID", got.ID, want.ID)
	}
	if got.Hash != want.Hash {
		add("Hash", fmt.Sprintf("%x", got.Hash), fmt.Sprintf("%x", want.Hash))
	}
	if got.Vendor != want.Vendor {
		add("Vendor", got.Vendor, want.Vendor)
	}
	if !equalMicrosPtr(got.DailyCap, want.DailyCap) {
		add("DailyCap", fmtMicrosPtr(got.DailyCap), fmtMicrosPtr(want.DailyCap))
	}
	if !equalMicrosPtr(got.TotalCap, want.TotalCap) {
		add("TotalCap", fmtMicrosPtr(got.TotalCap), fmtMicrosPtr(want.TotalCap))
	}
	if !equalStrings(got.AllowedEndpoints, want.AllowedEndpoints) {
		add("AllowedEndpoints", got.AllowedEndpoints, want.AllowedEndpoints)
	}
	if got.RunLabel != want.RunLabel {
		add("RunLabel", got.RunLabel, want.RunLabel)
	}
	if !equalJSON(got.Metadata, want.Metadata) {
		add("Metadata", string(got.Metadata), string(want.Metadata))
	}
	if msg := timeDiff(got.CreatedAt, want.CreatedAt); msg != "" {
		d = append(d, "CreatedAt = "+msg)
	}
	if msg := timeDiff(got.ExpiresAt, want.ExpiresAt); msg != "" {
		d = append(d, "ExpiresAt = "+msg)
	}
	if msg := timePtrDiff(got.RevokedAt, want.RevokedAt); msg != "" {
		d = append(d, "RevokedAt = "+msg)
	}
	return strings.Join(d, "\n")
}

func callDiff(got, want ledger.Call) string {
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("%s = %v; want %v", field, g, w)) }
	for _, s := range []struct{ field, got, want string }{
		{"CallID", got.CallID, want.CallID},
		{"KeyID", got.KeyID, want.KeyID},
		{"RunLabel", got.RunLabel, want.RunLabel},
		{"Vendor", got.Vendor, want.Vendor},
		{"Method", got.Method, want.Method},
		{"Path", got.Path, want.Path},
		{"Endpoint", got.Endpoint, want.Endpoint},
		{"Outcome", got.Outcome, want.Outcome},
		{"VendorCurrency", got.VendorCurrency, want.VendorCurrency},
		{"VendorTxnID", got.VendorTxnID, want.VendorTxnID},
		{"IdempotencyKey", got.IdempotencyKey, want.IdempotencyKey},
		{"ReplayOf", got.ReplayOf, want.ReplayOf},
		{"CostState", got.CostState, want.CostState},
	} {
		if s.got != s.want {
			add(s.field, fmt.Sprintf("%q", s.got), fmt.Sprintf("%q", s.want))
		}
	}
	if got.StatusCode != want.StatusCode {
		add("StatusCode", got.StatusCode, want.StatusCode)
	}
	if got.Reserved != want.Reserved {
		add("Reserved", got.Reserved, want.Reserved)
	}
	if got.Cost != want.Cost {
		add("Cost", got.Cost, want.Cost)
	}
	if wantCount := max(want.Count, 1); got.Count != wantCount { // 0 in want: an ordinary call's 1
		add("Count", got.Count, wantCount)
	}
	if !reflect.DeepEqual(got.VendorAmount, want.VendorAmount) {
		add("VendorAmount", fmtInt64Ptr(got.VendorAmount), fmtInt64Ptr(want.VendorAmount))
	}
	if msg := timeDiff(got.StartedAt, want.StartedAt); msg != "" {
		d = append(d, "StartedAt = "+msg)
	}
	if msg := timePtrDiff(got.FinishedAt, want.FinishedAt); msg != "" {
		d = append(d, "FinishedAt = "+msg)
	}
	return strings.Join(d, "\n")
}

// wantCall fails unless got matches want in every field.
func (f *fixture) wantCall(got, want ledger.Call) {
	f.t.Helper()
	if d := callDiff(got, want); d != "" {
		f.t.Fatalf("call %s:\n%s", want.CallID, d)
	}
}

func timeDiff(got, want time.Time) string {
	switch {
	case !got.Equal(want):
		return fmt.Sprintf("%s; want %s", got.Format(time.RFC3339Nano), want.UTC().Format(time.RFC3339Nano))
	case got.Location() != time.UTC:
		return fmt.Sprintf("%s is not in UTC", got)
	}
	return ""
}

func timePtrDiff(got, want *time.Time) string {
	switch {
	case got == nil && want == nil:
		return ""
	case got == nil:
		return "nil; want " + want.UTC().Format(time.RFC3339Nano)
	case want == nil:
		return got.Format(time.RFC3339Nano) + "; want nil"
	}
	return timeDiff(*got, *want)
}

func equalMicrosPtr(a, b *money.Micros) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func fmtMicrosPtr(m *money.Micros) string {
	if m == nil {
		return "nil"
	}
	return m.String()
}

func fmtInt64Ptr(p *int64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

// equalJSON compares two JSON documents by value; empty and "null" are the
// same absent metadata.
func equalJSON(a, b json.RawMessage) bool {
	absent := func(m json.RawMessage) bool { s := strings.TrimSpace(string(m)); return s == "" || s == "null" }
	if absent(a) || absent(b) {
		return absent(a) && absent(b)
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
