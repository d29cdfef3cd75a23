package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Trailers of GET /vault/audit/export (keyapi.TrailerExportComplete and
// TrailerExportError).
const (
	trailerExportComplete = "X-Keybrake-Export-Complete"
	trailerExportError    = "X-Keybrake-Export-Error"
)

func init() {
	register(command{name: "export", run: runExport, short: "stream recorded calls for an archive (JSON lines or CSV)",
		usage: "export [--since T|AGO] [--until T|AGO] [--format jsonl|csv] [--run LABEL] [--key KEY_ID] [--vendor NAME] [--outcome O]"})
}

// runExport streams the calls to stdout as the API sends them, so an
// export of any length holds one buffer in memory; it fails (exit 3) when
// the export ends without the API's completion trailer.
func runExport(c *ctx, args []string) error {
	f := c.flags()
	since := f.String("since", "", "calls started at or after this RFC 3339 time, or this long ago (24h, 30d)")
	until := f.String("until", "", "calls started before this RFC 3339 time, or this long ago")
	format := f.String("format", "jsonl", "jsonl (one call object a line) or csv")
	filters := map[string]*string{
		"agent_run_label": f.String("run", "", "only calls of this agent_run_label"),
		"key_id":          f.String("key", "", "only calls of this key"),
		"vendor":          f.String("vendor", "", "only calls to this vendor"),
		"outcome":         f.String("outcome", "", "only calls with this outcome"),
	}
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if *format != "jsonl" && *format != "csv" {
		return &usageError{msg: fmt.Sprintf("--format %q: want jsonl or csv", *format), usage: c.usage}
	}
	q := url.Values{"format": {*format}}
	now := c.cfg.now()
	for name, v := range map[string]string{"since": *since, "until": *until} {
		t, err := timeFlag(name, v, now)
		if err != nil {
			return err
		}
		if t != "" {
			q.Set(name, t)
		}
	}
	for k, v := range filters {
		if *v != "" {
			q.Set(k, *v)
		}
	}
	return c.stream("/vault/audit/export?" + q.Encode())
}

// stream GETs path and copies the answer's body to stdout as it comes,
// with no overall timeout (an archive may take long), then checks the
// export's completion trailer.
func (c *ctx) stream(path string) error {
	client := *c.cfg.HTTPClient
	client.Timeout = 0
	resp, err := c.send(&client, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return c.errorAnswer(http.MethodGet, path, resp)
	}
	base := strings.TrimRight(c.cfg.URL, "/")
	if _, err := io.Copy(c.cfg.Stdout, resp.Body); err != nil {
		return &unreachableError{url: base, err: fmt.Errorf("export cut short: %w", err)}
	}
	if resp.Trailer.Get(trailerExportComplete) != "true" {
		why := resp.Trailer.Get(trailerExportError)
		if why == "" {
			why = "the answer ended without its completion trailer"
		}
		return &unreachableError{url: base, err: fmt.Errorf("export incomplete: %s", why)}
	}
	return nil
}
