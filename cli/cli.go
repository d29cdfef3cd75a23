// Package cli is Keybrake's command line client, run as
// `caddy keybrake <command>` from the same binary as the server. It is a
// plain HTTP client of the key API with table output for people and --json
// for scripts; caddymodule only registers it with Caddy's command registry.
//
// Environment:
//
//	KEYBRAKE_URL        the Keybrake site (default http://localhost:8080)
//	KEYBRAKE_API_TOKEN  the API token sent as Authorization: Bearer
//
// Exit codes: 0 ok, 1 the API answered with an error, 2 usage error,
// 3 Keybrake unreachable (or its answer unreadable).
package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitAPIError    = 1
	ExitUsage       = 2
	ExitUnreachable = 3
)

// DefaultURL is used when KEYBRAKE_URL is not set.
const DefaultURL = "http://localhost:8080"

// Config is what a run of the CLI needs from its surroundings.
type Config struct {
	// URL is the Keybrake site; default DefaultURL.
	URL string
	// Token is the API token. It is sent, never printed.
	Token string
	// Stdout and Stderr receive output and errors.
	Stdout, Stderr io.Writer
	// HTTPClient; default a client with a 30 s timeout.
	HTTPClient *http.Client
	// Now is the clock relative times (--since 24h) are read against;
	// default time.Now.
	Now func() time.Time
}

func (cfg Config) now() time.Time {
	if cfg.Now != nil {
		return cfg.Now()
	}
	return time.Now()
}

// FromEnv reads KEYBRAKE_URL and KEYBRAKE_API_TOKEN.
func FromEnv(stdout, stderr io.Writer) Config {
	return Config{URL: os.Getenv("KEYBRAKE_URL"), Token: os.Getenv("KEYBRAKE_API_TOKEN"), Stdout: stdout, Stderr: stderr}
}

// command is one subcommand.
type command struct {
	name  string
	usage string
	short string
	run   func(c *ctx, args []string) error
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// Main runs the CLI with args (without the "keybrake" word) and returns the
// exit code.
func Main(args []string, cfg Config) int {
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if len(args) == 0 {
		fmt.Fprint(cfg.Stderr, Usage())
		return ExitUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(cfg.Stdout, Usage()) // asked for: the answer, on stdout
		return ExitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(cfg.Stderr, "keybrake: unknown command %q\n\n%s", args[0], Usage())
		return ExitUsage
	}
	c := &ctx{cfg: cfg, name: cmd.name, usage: cmd.usage}
	err := cmd.run(c, args[1:])
	if c.json || slices.Contains(args[1:], "--json") || slices.Contains(args[1:], "-json") {
		return reportJSON(cfg.Stdout, err)
	}
	return report(cfg.Stderr, cmd.name, err)
}

// reportJSON is report for --json: the error as one JSON object on stdout,
// {"error":{"code":…,"message":…}}, the API's own when it refused, so a
// script reads every answer from one stream. The exit codes are report's.
func reportJSON(w io.Writer, err error) int {
	code := report(io.Discard, "", err)
	if err == nil || errors.Is(err, errHelp) || errors.Is(err, errNothingDone) {
		return code // nothing done: the API's answer is already printed
	}
	var ae *APIError
	body := map[string]any{"code": map[int]string{ExitUsage: "usage", ExitUnreachable: "unreachable"}[code],
		"message": err.Error()}
	if errors.As(err, &ae) {
		body = map[string]any{"code": ae.Code, "message": ae.Message, "status": ae.Status}
		if ae.Field != "" {
			body["field"] = ae.Field
		}
	}
	b, _ := json.Marshal(map[string]any{"error": body})
	fmt.Fprintln(w, string(b))
	return code
}

// report prints err and maps it to an exit code.
func report(w io.Writer, name string, err error) int {
	var ue *usageError
	var ae *APIError
	var ne *unreachableError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, errHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(w, "keybrake %s: %s\n", name, ue.msg)
		if ue.usage != "" {
			fmt.Fprintf(w, "usage: caddy keybrake %s\n", ue.usage)
		}
		return ExitUsage
	case errors.As(err, &ae):
		fmt.Fprintf(w, "keybrake %s: %s\n", name, ae.Error())
		return ExitAPIError
	case errors.As(err, &ne):
		fmt.Fprintf(w, "keybrake %s: %s\n", name, ne.Error())
		return ExitUnreachable
	case errors.Is(err, errNothingDone):
		fmt.Fprintf(w, "keybrake %s: %v\n", name, err)
		return ExitAPIError
	default:
		fmt.Fprintf(w, "keybrake %s: %v\n", name, err)
		return ExitUnreachable
	}
}

// Usage is the help text listing every command.
func Usage() string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: caddy keybrake <command> [flags]\n\ncommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-8s %s\n", n, commands[n].short)
	}
	b.WriteString("\nEvery command takes --json (the API's JSON, for scripts) and --url.\n" +
		"Environment: KEYBRAKE_URL (default " + DefaultURL + "), KEYBRAKE_API_TOKEN.\n" +
		"Exit codes: 0 ok, 1 the API refused, 2 usage error, 3 Keybrake unreachable.\n" +
		"Run `caddy keybrake <command> -h` for a command's flags.\n")
	return b.String()
}

type usageError struct{ msg, usage string }

func (e *usageError) Error() string { return e.msg }

type unreachableError struct {
	url string
	err error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach Keybrake at %s (set KEYBRAKE_URL): %v", e.url, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

var errHelp = errors.New("help shown")

// errNothingDone wraps the error of a command the API accepted but that
// changed nothing the user asked for (revoke --run of a run with no active
// key): exit 1, as a refusal.
var errNothingDone = errors.New("nothing done")
