package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// table writes aligned columns for people.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// dollars renders an API amount (a JSON number of dollars) as $x.yy,
// keeping every decimal the API gave past the cents.
func dollars(n json.Number) string {
	s := n.String()
	if s == "" {
		return "-"
	}
	whole, frac, _ := strings.Cut(s, ".")
	for len(frac) < 2 {
		frac += "0"
	}
	return "$" + whole + "." + frac
}

// dollarsPtr renders an optional cap; "-" when not set.
func dollarsPtr(n *json.Number) string {
	if n == nil {
		return "-"
	}
	return dollars(*n)
}

// shortTime trims an RFC 3339 time to the second for a table.
func shortTime(s string) string {
	if len(s) >= 19 {
		return strings.Replace(s[:19], "T", " ", 1) + "Z"
	}
	return s
}

// orDash shows an empty cell as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
