package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/keybrake/keybrake/integration/simvendor"
	"github.com/keybrake/keybrake/internal/graphemesplitter"
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
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	enc.SetEscapeHTML(false)
	for _, b := range bodies {
		if err := enc.Encode(b); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(node, "segments.js")
	cmd.Dir = smsOracleDir
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node segments.js: %v\n%s", err, stderr.String())
	}
	var counts []smsCount
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		n, err := strconv.Atoi(f[0])
		if len(f) != 2 || err != nil {
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
					i, len(utf16Units(b)), strconv.QuoteToASCII(truncateString(b, 200)), w.segments, w.encoding, n, enc, simN, simEnc)
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

// TestGraphemeTableMatchesSplitter: internal/graphemesplitter's property
// table is grapheme-splitter's, code point by code point.
func TestGraphemeTableMatchesSplitter(t *testing.T) {
	node := smsOracle(t)
	cmd := exec.Command(node, "graphemetable.js")
	cmd.Dir = smsOracleDir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node graphemetable.js: %v", err)
	}
	want := map[rune]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var lo, hi rune
		var name string
		if _, err := fmt.Sscanf(line, "%x %x %s", &lo, &hi, &name); err != nil {
			t.Fatalf("graphemetable.js printed %q", line)
		}
		for r := lo; r <= hi; r++ {
			want[r] = name
		}
	}
	bad := 0
	for r := rune(0); r <= utf8.MaxRune; r++ {
		w, ok := want[r]
		if !ok {
			w = "Other"
		}
		if got := graphemesplitter.PropertyOf(r).String(); got != w && bad < 10 {
			bad++
			t.Errorf("U+%04X: %s; grapheme-splitter says %s", r, got, w)
		}
	}
}

func utf16Units(s string) []uint16 {
	var n []uint16
	for _, r := range s {
		if r > 0xFFFF {
			n = append(n, 0, 0)
		} else {
			n = append(n, 0)
		}
	}
	return n
}
