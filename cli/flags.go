package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// flags is a command's flag set with the flags every command has.
type flags struct {
	*flag.FlagSet
	c *ctx
}

func (c *ctx) flags() *flags {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&c.json, "json", false, "print the API's JSON answer as is, for scripts")
	fs.StringVar(&c.cfg.URL, "url", c.cfg.URL, "Keybrake site (default $KEYBRAKE_URL or "+DefaultURL+")")
	return &flags{FlagSet: fs, c: c}
}

// parse parses flags anywhere among the arguments and returns the
// positional ones; it checks their count is in [minArgs, maxArgs].
func (f *flags) parse(args []string, minArgs, maxArgs int) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printHelp()
				return nil, errHelp
			}
			return nil, &usageError{msg: err.Error(), usage: f.c.usage}
		}
		if f.NArg() == 0 {
			break
		}
		pos = append(pos, f.Arg(0))
		args = f.Args()[1:]
	}
	if len(pos) < minArgs || len(pos) > maxArgs {
		return nil, &usageError{msg: "wrong number of arguments", usage: f.c.usage}
	}
	return pos, nil
}

func (f *flags) printHelp() {
	w := f.c.cfg.Stdout // asked for with -h: the answer, on stdout
	fmt.Fprintf(w, "usage: caddy keybrake %s\n\nflags:\n", f.c.usage)
	f.SetOutput(w)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}

// csvOrJSON refuses --csv with --json: each asks for a whole answer in its
// own format.
func (f *flags) csvOrJSON(csv bool) error {
	if csv && f.c.json {
		return &usageError{msg: "--csv and --json are two formats of one answer: give one", usage: f.c.usage}
	}
	return nil
}

// timeFlag turns a --since/--until value into the RFC 3339 time the API
// takes: an RFC 3339 time as is, or a duration (90m, 1h, 7d) meaning that
// long before now.
func timeFlag(name, v string, now time.Time) (string, error) {
	if v == "" {
		return "", nil
	}
	if _, err := time.Parse(time.RFC3339, v); err == nil {
		return v, nil
	}
	d, err := time.ParseDuration(v)
	if days, ok := strings.CutSuffix(v, "d"); ok && err != nil {
		var n int
		if _, serr := fmt.Sscanf(days, "%d", &n); serr == nil && fmt.Sprint(n) == days {
			d, err = time.Duration(n)*24*time.Hour, nil
		}
	}
	if err != nil || d <= 0 {
		return "", &usageError{msg: fmt.Sprintf("--%s %q: give an RFC 3339 time (2026-11-29T10:00:00Z) or how long ago (90m, 1h, 7d)", name, v)}
	}
	return now.Add(-d).UTC().Format(time.RFC3339), nil
}

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// usdPattern is a dollar amount as the API takes it: at most 6 decimals.
var usdPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,6})?$`)

// usd checks a dollar amount flag and returns it as an exact JSON number
// (never through a float).
func usd(name, s string) (json.Number, error) {
	if !usdPattern.MatchString(s) {
		return "", &usageError{msg: fmt.Sprintf("--%s %q: want a dollar amount with at most 6 decimals, e.g. 12.5", name, s)}
	}
	return json.Number(s), nil
}

// set reports whether the flag was given on the command line.
func (f *flags) set(name string) bool {
	found := false
	f.Visit(func(fl *flag.Flag) {
		if fl.Name == name {
			found = true
		}
	})
	return found
}
