package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxResponseBytes bounds what the CLI reads of one answer (a CSV export
// can be large).
const maxResponseBytes = 256 << 20

// APIError is an error answer of the key API:
// {"error":{"code","message","field"}}.
type APIError struct {
	Method, Path string
	Status       int
	Code         string
	Message      string
	Field        string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s %s: HTTP %d", e.Method, e.Path, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Field != "" {
		msg += " (field " + e.Field + ")"
	}
	if e.missingEndpoint() {
		msg += "\n  this Keybrake does not serve " + e.Method + " " + routeOf(e.Path) +
			"; it may be older than this CLI"
	}
	if e.Status == http.StatusUnauthorized {
		msg += "\n  check KEYBRAKE_API_TOKEN"
	}
	return msg
}

// missingEndpoint tells an endpoint the server lacks from a missing
// object: a 405, or a 404 whose message says there is no such endpoint.
func (e *APIError) missingEndpoint() bool {
	return e.Status == http.StatusMethodNotAllowed ||
		(e.Status == http.StatusNotFound && (e.Code == "" || strings.Contains(e.Message, "no such endpoint")))
}

// routeOf drops the query string of a path for messages.
func routeOf(p string) string {
	p, _, _ = strings.Cut(p, "?")
	return p
}

// ctx is one command's run: its config, output and API access.
type ctx struct {
	cfg   Config
	name  string
	usage string
	json  bool
}

// call sends a request to the key API and returns the answer's body, or an
// *APIError for a non-2xx answer, or an *unreachableError.
func (c *ctx) call(method, path string, body any) ([]byte, error) {
	resp, err := c.send(c.cfg.HTTPClient, method, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, c.errorAnswer(method, path, resp)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, &unreachableError{url: strings.TrimRight(c.cfg.URL, "/"), err: fmt.Errorf("reading the answer: %w", err)}
	}
	return raw, nil
}

// send sends a request to the key API with client and returns its answer,
// whatever its status, or an *unreachableError.
func (c *ctx) send(client *http.Client, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	base := strings.TrimRight(c.cfg.URL, "/")
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return nil, &usageError{msg: fmt.Sprintf("bad KEYBRAKE_URL %q: %v", c.cfg.URL, err)}
	}
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "keybrake-cli")
	resp, err := client.Do(req)
	if err != nil {
		return nil, &unreachableError{url: base, err: err}
	}
	return resp, nil
}

// errorAnswer reads a non-2xx answer into an *APIError.
func (c *ctx) errorAnswer(method, path string, resp *http.Response) error {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return &unreachableError{url: strings.TrimRight(c.cfg.URL, "/"), err: fmt.Errorf("reading the answer: %w", err)}
	}
	ae := &APIError{Method: method, Path: path, Status: resp.StatusCode}
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &eb) == nil {
		ae.Code, ae.Message, ae.Field = eb.Error.Code, eb.Error.Message, eb.Error.Field
	} else {
		ae.Message = strings.TrimSpace(string(raw))
		if len(ae.Message) > 200 {
			ae.Message = ae.Message[:200] + "…"
		}
	}
	return ae
}

// callJSON calls the API and, with --json, prints the answer as is;
// otherwise decodes it into out for a table.
func (c *ctx) callJSON(method, path string, body, out any) (printed bool, err error) {
	raw, err := c.call(method, path, body)
	if err != nil {
		return false, err
	}
	if c.json {
		_, err := c.cfg.Stdout.Write(append(bytes.TrimRight(raw, "\n"), '\n'))
		return true, err
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return false, &unreachableError{url: c.cfg.URL, err: fmt.Errorf("decoding the answer: %w", err)}
		}
	}
	return false, nil
}
