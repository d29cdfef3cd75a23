// Command load is Keybrake's HTTP load generator: C workers, each on its own
// keep-alive connection, send the same request back to back for a warm-up
// and then a measured window, and it reports throughput and latency
// percentiles of the measured window. It only sends to loopback addresses,
// and it always stops: no request starts after -warmup + -d, requests in
// flight then are let finish (they are not counted), and a watchdog exits if
// workers hang past -timeout after that.
//
//	load -name plain -url http://127.0.0.1:8081/v1/customers/cus_x -c 64 -d 10s
//	load -url http://127.0.0.1:8082/v1/payment_intents -method POST \
//	     -body 'amount=100&currency=usd' -keys keys.txt -c 64 -d 10s -out results.tsv
//
// With -keys, worker i sends the i-th key of the file (wrapping around) as
// "Authorization: Bearer <key>"; -key gives every worker the same key.
//
// -out appends one tab-separated line:
//
//	name  requests  errors  seconds  req_per_s  p50_ms  p90_ms  p99_ms  max_ms  client_cpu_s
//
// client_cpu_s is the CPU time (user + system) this process used during the
// measured window, so that on a small machine the load generator's own share
// can be told apart.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

type worker struct {
	lat    []time.Duration
	errors int
}

func main() {
	var hdrs headers
	name := flag.String("name", "run", "label for the report")
	target := flag.String("url", "", "URL to load (loopback only)")
	method := flag.String("method", http.MethodGet, "HTTP method")
	body := flag.String("body", "", "request body (sent as application/x-www-form-urlencoded when set)")
	key := flag.String("key", "", "vault key sent by every worker as Authorization: Bearer")
	keysFile := flag.String("keys", "", "file of vault keys, one a line; worker i uses key i mod n")
	conns := flag.Int("c", 64, "concurrent workers (one keep-alive connection each)")
	dur := flag.Duration("d", 10*time.Second, "measured duration")
	warmup := flag.Duration("warmup", 2*time.Second, "warm-up before measuring (not reported)")
	timeout := flag.Duration("timeout", 10*time.Second, "per-request timeout")
	out := flag.String("out", "", "append a tab-separated result line to this file")
	flag.Var(&hdrs, "H", "extra request header 'Name: value' (repeatable)")
	flag.Parse()

	if err := run(*name, *target, *method, *body, *key, *keysFile, hdrs, *conns, *dur, *warmup, *timeout, *out); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(name, target, method, body, key, keysFile string, hdrs headers, conns int,
	dur, warmup, timeout time.Duration, out string) error {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("-url must be an http:// URL, got %q", target)
	}
	if !loopback(u.Hostname()) {
		return fmt.Errorf("refusing to load non-loopback host %q", u.Hostname())
	}
	if conns <= 0 || dur <= 0 || warmup < 0 {
		return fmt.Errorf("-c and -d must be positive")
	}
	keys := []string{}
	if key != "" {
		keys = append(keys, key)
	}
	if keysFile != "" {
		ks, err := readLines(keysFile)
		if err != nil {
			return err
		}
		keys = append(keys, ks...)
	}
	header := http.Header{}
	for _, h := range hdrs {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return fmt.Errorf("bad -H %q: want 'Name: value'", h)
		}
		header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if body != "" && header.Get("Content-Type") == "" {
		header.Set("Content-Type", "application/x-www-form-urlencoded")
	}

	// Watchdog: whatever happens, the process ends.
	go func() {
		time.Sleep(warmup + dur + timeout + 5*time.Second)
		fmt.Fprintln(os.Stderr, "load: watchdog: workers did not stop; exiting")
		os.Exit(2)
	}()

	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	client := &http.Client{Transport: tr, Timeout: timeout}
	defer tr.CloseIdleConnections()

	start := time.Now()
	measureFrom := start.Add(warmup)
	stopAt := measureFrom.Add(dur)
	// Workers stop starting requests at stopAt but let the ones in flight
	// finish (bounded by -timeout): cancelling them would make the proxy see
	// clients hang up, which is a different benchmark.
	var stopped atomic.Bool
	stopTimer := time.AfterFunc(time.Until(stopAt), func() { stopped.Store(true) })
	defer stopTimer.Stop()
	ctx := context.Background()

	// The load generator's own CPU time in the measured window.
	var cpuAtStart atomic.Int64
	cpuTimer := time.AfterFunc(warmup, func() { cpuAtStart.Store(int64(cpuTime())) })
	defer cpuTimer.Stop()

	var firstErr atomic.Value
	workers := make([]worker, conns)
	var wg sync.WaitGroup
	bodyBytes := []byte(body)
	for i := range workers {
		wg.Add(1)
		go func(w *worker, i int) {
			defer wg.Done()
			h := header.Clone()
			if len(keys) > 0 {
				h.Set("Authorization", "Bearer "+keys[i%len(keys)])
			}
			w.lat = make([]time.Duration, 0, 4096)
			for !stopped.Load() {
				req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(bodyBytes))
				if err != nil {
					firstErr.CompareAndSwap(nil, err.Error())
					w.errors++
					return
				}
				req.Header = h
				if len(bodyBytes) == 0 {
					req.Body = http.NoBody
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				ok := false
				if err == nil {
					if resp.StatusCode < 200 || resp.StatusCode > 299 {
						b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
						firstErr.CompareAndSwap(nil, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, b))
					} else {
						ok = true
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
				t1 := time.Now()
				if t0.Before(measureFrom) || t1.After(stopAt) {
					continue // warm-up, or cut off by the end of the window
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err.Error())
				}
				if !ok {
					w.errors++
					continue
				}
				w.lat = append(w.lat, t1.Sub(t0))
			}
		}(&workers[i], i)
	}
	wg.Wait()
	elapsed := stopAt.Sub(measureFrom)
	clientCPU := cpuTime() - time.Duration(cpuAtStart.Load())

	var all []time.Duration
	errs := 0
	for _, w := range workers {
		all = append(all, w.lat...)
		errs += w.errors
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		i := int(p*float64(len(all))+0.5) - 1
		i = max(0, min(i, len(all)-1))
		return float64(all[i]) / float64(time.Millisecond)
	}
	rps := float64(len(all)) / elapsed.Seconds()
	fmt.Printf("%-30s %7d ok %5d err %7.0f req/s  p50 %7.2f ms  p90 %7.2f ms  p99 %7.2f ms  max %7.2f ms  client cpu %5.2f s\n",
		name, len(all), errs, rps, pct(0.50), pct(0.90), pct(0.99), pct(1), clientCPU.Seconds())
	if v := firstErr.Load(); v != nil {
		fmt.Fprintf(os.Stderr, "load: %s: first error: %s\n", name, v)
	}
	if out != "" {
		f, err := os.OpenFile(out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(f, "%s\t%d\t%d\t%.3f\t%.1f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\n",
			name, len(all), errs, elapsed.Seconds(), rps, pct(0.50), pct(0.90), pct(0.99), pct(1), clientCPU.Seconds())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if len(all) == 0 {
		return fmt.Errorf("%s: no successful request in the measured window", name)
	}
	return nil
}

// cpuTime is this process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no keys", path)
	}
	return out, nil
}
