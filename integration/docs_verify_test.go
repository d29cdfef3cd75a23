package integration

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/alerts"
)

// TestDocsNodeVerify runs docs/alerts.md's Node verify() as printed against
// signatures made by Keybrake's own signer: a good one is true; a short, a
// long, a wrong, a stale one and a missing header are false, never a throw.
func TestDocsNodeVerify(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("KEYBRAKE_REQUIRE_E2E") == "1" {
			t.Fatal("node is required to check docs/alerts.md's verify()")
		}
		t.Skip("no node")
	}
	snippet := docBlock(t, "../docs/alerts.md", "js", "function verify(")
	const secret, body = "whsec_docs", `{"id":"evt1","type":"key.revoked"}`
	good := alerts.Sign(secret, time.Now(), []byte(body))
	stale := alerts.Sign(secret, time.Now().Add(-time.Hour), []byte(body))
	v1 := good[strings.Index(good, "v1=")+3:]
	tPart := good[:strings.Index(good, ",")]
	cases := []struct {
		header string
		want   string
	}{
		{good, "true"},
		{tPart + ",v1=" + v1[:10], "false"},
		{tPart + ",v1=" + v1 + "00", "false"},
		{tPart + ",v1=" + strings.Repeat("0", len(v1)), "false"},
		{stale, "false"},
		{"", "false"},
	}
	var script strings.Builder
	script.WriteString(snippet)
	for _, c := range cases {
		script.WriteString("try { console.log(String(verify(" + jsString(secret) + ", " + jsString(c.header) + ", " +
			jsString(body) + "))) } catch (e) { console.log(\"threw: \" + e.message) }\n")
	}
	cmd := exec.Command(node, "--input-type=module", "-")
	cmd.Stdin = strings.NewReader(script.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(got) != len(cases) {
		t.Fatalf("node printed %q", out)
	}
	for i, c := range cases {
		if got[i] != c.want {
			t.Errorf("verify(%q) = %s; want %s", c.header, got[i], c.want)
		}
	}
}

// docBlock returns the first fenced block of lang in a doc that contains
// want, as printed.
func docBlock(t *testing.T, path, lang, want string) string {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("(?s)```"+lang+"\n(.*?)```").FindAllSubmatch(doc, -1) {
		if strings.Contains(string(m[1]), want) {
			return string(m[1])
		}
	}
	t.Fatalf("%s has no %s block with %q", path, lang, want)
	return ""
}

func jsString(s string) string {
	return "\"" + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + "\""
}
