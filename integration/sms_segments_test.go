package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/keybrake/keybrake/integration/simvendor"
	"github.com/keybrake/keybrake/internal/graphemesplitter"
	"github.com/keybrake/keybrake/internal/text"
	"github.com/keybrake/keybrake/vendors/twilio"
)

// The SMS segment oracle: Twilio's own segment calculator (npm
// sms-segments-calculator, pinned in integration/testdata/smssegments),
// run by node. Keybrake's pricing (vendors/twilio.Segments) and the
// simulated Twilio (simvendor.SMSSegments, written apart) must count every
// body exactly as it does.

const smsOracleDir = "testdata/smssegments"

// smsOracle returns node's path once the pinned calculator is installed
// (npm ci, when node_modules is missing or holds another version).
func smsOracle(t *testing.T) string {
	t.Helper()
	node := needTool(t, "node")
	installed, _ := os.ReadFile(filepath.Join(smsOracleDir, "node_modules", "sms-segments-calculator", "package.json"))
	var pkg struct{ Version string }
	_ = json.Unmarshal(installed, &pkg)
	if pkg.Version != "1.3.0" {
		npm := needTool(t, "npm")
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = smsOracleDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", smsOracleDir, err, out)
		}
	}
	return node
}

type smsCount struct {
	segments int
	encoding string
}

// oracleSegments runs every body through the calculator in one node
// process.
func oracleSegments(t *testing.T, node string, bodies []string) []smsCount {
	t.Helper()
	out := runNode(t, node, "segments.js", bodies)
	var counts []smsCount
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			t.Fatalf("node segments.js printed %q", sc.Text())
		}
		n, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("node segments.js printed %q", sc.Text())
		}
		counts = append(counts, smsCount{n, f[1]})
	}
	if len(counts) != len(bodies) {
		t.Fatalf("node segments.js counted %d bodies of %d", len(counts), len(bodies))
	}
	return counts
}

// TestSMSSegmentsMatchTwilioCalculator: 10,000 random bodies from a fixed
// seed and 2,000 from a logged one (KEYBRAKE_SMS_SEED replays it), every
// count and encoding equal across the calculator, Keybrake's pricing and
// the simulated Twilio.
func TestSMSSegmentsMatchTwilioCalculator(t *testing.T) {
	node := smsOracle(t)
	extra := uint64(time.Now().UnixNano())
	if s := os.Getenv("KEYBRAKE_SMS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("KEYBRAKE_SMS_SEED: %v", err)
		}
		extra = v
	}
	t.Logf("random bodies: 10000 from seed 21, 2000 from seed %d (KEYBRAKE_SMS_SEED=%d replays them)", extra, extra)
	bodies := smsBoundaryBodies()
	bodies = append(bodies, randomSMSBodies(21, 10_000)...)
	bodies = append(bodies, randomSMSBodies(extra, 2_000)...)
	want := oracleSegments(t, node, bodies)
	disagree, ucs2, multi := 0, 0, 0
	for i, b := range bodies {
		n, enc := twilio.Segments(b)
		simN, simUCS2 := simvendor.SMSSegments(b)
		simEnc := twilio.EncodingGSM7
		if simUCS2 {
			simEnc = twilio.EncodingUCS2
		}
		w := want[i]
		if n != w.segments || enc != w.encoding || simN != w.segments || simEnc != w.encoding {
			disagree++
			if disagree <= 10 {
				t.Errorf("body %d (%d UTF-16 units) %s: calculator %d %s, Keybrake %d %s, simvendor %d %s",
					i, len(utf16.Encode([]rune(b))), strconv.QuoteToASCII(text.Truncate(b, 200)), w.segments, w.encoding, n, enc, simN, simEnc)
			}
		}
		if w.encoding == twilio.EncodingUCS2 {
			ucs2++
		}
		if w.segments > 1 {
			multi++
		}
	}
	t.Logf("%d bodies: %d UCS-2, %d multipart, %d disagreements", len(bodies), ucs2, multi, disagree)
	if disagree > 0 {
		t.Errorf("%d of %d bodies counted differently from Twilio's calculator", disagree, len(bodies))
	}
}

// TestGraphemeSplitterMatchesLibrary: internal/graphemesplitter is
// grapheme-splitter 1.0.4. Its property table is the library's, code point
// by code point; and 20,000 strings dense in every property (code points
// drawn from each run of the table, among letters, extension characters
// and line breaks) split into the same clusters.
func TestGraphemeSplitterMatchesLibrary(t *testing.T) {
	node := smsOracle(t)
	out := runNode(t, node, "graphemetable.js", nil)
	// The runs come in order; every code point between them is Other.
	var runs [][2]rune
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var lo, hi rune
		var name string
		if _, err := fmt.Sscanf(line, "%x %x %s", &lo, &hi, &name); err != nil {
			t.Fatalf("graphemetable.js printed %q", line)
		}
		runs = append(runs, [2]rune{lo, hi})
		names = append(names, name)
	}
	bad, next := 0, 0
	for r := rune(0); r <= utf8.MaxRune; r++ {
		for next < len(runs) && runs[next][1] < r {
			next++
		}
		w := "Other"
		if next < len(runs) && runs[next][0] <= r {
			w = names[next]
		}
		if got := graphemesplitter.PropertyOf(r).String(); got != w && bad < 10 {
			bad++
			t.Errorf("U+%04X: %s; grapheme-splitter says %s", r, got, w)
		}
	}

	rng := rand.New(rand.NewPCG(1, 21))
	strs := make([]string, 20_000)
	for i := range strs {
		var b strings.Builder
		for range 1 + rng.IntN(60) {
			if rng.IntN(4) == 0 {
				b.WriteString([]string{"a", "b", "{", "€", " ", "\r", "\n", "\r\n"}[rng.IntN(8)])
				continue
			}
			run := runs[rng.IntN(len(runs))]
			r := run[0] + rune(rng.IntN(int(run[1]-run[0])+1))
			if !utf8.ValidRune(r) {
				r = 'x' // a surrogate: no Go string holds one
			}
			b.WriteRune(r)
		}
		strs[i] = b.String()
	}
	lines := strings.Split(strings.TrimSuffix(string(runNode(t, node, "split.js", strs)), "\n"), "\n")
	if len(lines) != len(strs) {
		t.Fatalf("split.js split %d strings of %d", len(lines), len(strs))
	}
	bad = 0
	for i, s := range strs {
		var lens []string
		for _, g := range graphemesplitter.Split(s) {
			lens = append(lens, strconv.Itoa(len(utf16.Encode([]rune(g)))))
		}
		if got := strings.Join(lens, ","); got != lines[i] {
			bad++
			if bad <= 10 {
				t.Errorf("%+q: clusters of %s code units; grapheme-splitter: %s", s, got, lines[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d strings split differently from grapheme-splitter", bad, len(strs))
	}
}

// runNode runs a script of the oracle folder with the strings as JSON
// lines on stdin, and returns what it printed.
func runNode(t *testing.T, node, script string, in []string) []byte {
	t.Helper()
	var stdin bytes.Buffer
	enc := json.NewEncoder(&stdin)
	enc.SetEscapeHTML(false)
	for _, s := range in {
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(node, script)
	cmd.Dir = smsOracleDir
	cmd.Stdin = &stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	return out
}
