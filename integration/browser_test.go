package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// chromiumPath finds a headless-capable Chromium: KEYBRAKE_CHROMIUM, else
// Debian's chromium (what .ci/run installs), else a Chrome in PATH.
func chromiumPath() string {
	if p := os.Getenv("KEYBRAKE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// needBrowser skips the test when no Chromium is installed, unless
// KEYBRAKE_REQUIRE_E2E=1 (CI), where it fails instead.
func needBrowser(t *testing.T) string {
	t.Helper()
	p := chromiumPath()
	if p != "" {
		return p
	}
	if os.Getenv("KEYBRAKE_REQUIRE_E2E") == "1" {
		t.Fatal("no Chromium found (install Debian's chromium, or set KEYBRAKE_CHROMIUM)")
	}
	t.Skip("skipping browser test: no Chromium installed (apt-get install chromium)")
	return ""
}

// browser is one headless Chromium tab, with the page's uncaught exceptions
// collected so a test can refuse them.
type browser struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string
}

// newBrowser starts headless Chromium for the test, bounded by timeout, and
// closes it when the test ends.
func newBrowser(t *testing.T, execPath string, timeout time.Duration) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	// The first action starts the browser, on a context with no deadline
	// (a deadline there would stop the browser); the rest share one.
	if err := chromedp.Do(ctx); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("starting chromium %s: %v", execPath, err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	b := &browser{ctx: tctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			b.problem("uncaught exception: " + (&chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails}).Error())
		case runtime.EventExceptionThrown:
			b.problem("uncaught exception: " + (&chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails}).Error())
		}
	}); err != nil {
		t.Fatalf("listening to the page: %v", err)
	}
	return b
}

func (b *browser) problem(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, s)
}

// do runs chromedp steps, failing the test with what for context.
func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// attr reads an attribute of the first element matching the CSS selector.
func (b *browser) attr(t *testing.T, sel, name string) string {
	t.Helper()
	r, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil {
		t.Fatalf("browser: reading %s[%s]: %v", sel, name, err)
	}
	return r.Value
}

// eval evaluates a JavaScript expression that returns a string.
func (b *browser) eval(t *testing.T, expr string) string {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("browser: evaluating %s: %v", expr, err)
	}
	return v
}

// waitAttr polls until the first element matching the CSS selector has
// attr == want, bounded by the browser's deadline (never a timing
// assertion). It returns every distinct value seen on the way, in order.
func (b *browser) waitAttr(t *testing.T, sel, attr, want string) (seen []string) {
	t.Helper()
	expr := fmt.Sprintf(`(function(){const e=document.querySelector(%q);return e?(e.getAttribute(%q)||""):"\x00"})()`, sel, attr)
	for {
		v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("browser: waiting for %s[%s=%q]: %v (seen %v)", sel, attr, want, err, seen)
		}
		if v != "\x00" && (len(seen) == 0 || seen[len(seen)-1] != v) {
			seen = append(seen, v)
		}
		if v == want {
			return seen
		}
		select {
		case <-b.ctx.Done():
			t.Fatalf("browser: %s[%s] never became %q (seen %v)", sel, attr, want, seen)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// screenshot saves a full-page PNG under KEYBRAKE_E2E_ARTIFACTS, else the
// test's artifact directory (kept with `go test -artifacts`), and returns
// its path.
func (b *browser) screenshot(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("KEYBRAKE_E2E_ARTIFACTS")
	if dir == "" {
		dir = t.ArtifactDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// checkClean fails the test on any uncaught exception the page threw.
func (b *browser) checkClean(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Errorf("page: %s", p)
	}
}

// css formats a CSS selector.
func css(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// waitText polls until the text of the first element matching the CSS
// selector is want, bounded by the browser's deadline.
func (b *browser) waitText(t *testing.T, sel, want string) {
	t.Helper()
	expr := fmt.Sprintf(`(function(){const e=document.querySelector(%q);return e?e.textContent:""})()`, sel)
	last := ""
	for {
		v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("browser: waiting for %s text %q: %v", sel, want, err)
		}
		if v == want {
			return
		}
		last = v
		select {
		case <-b.ctx.Done():
			t.Fatalf("browser: %s text never became %q (last %q)", sel, want, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// accessibilityProblems is run in the page: every form control has a label,
// every button and link a name, no visible text is below WCAG AA contrast
// (4.5:1) against the background it is drawn on, and nothing is wider than
// the viewport (no sideways scrolling of the page on a phone; a table may
// scroll inside its own region).
const accessibilityProblems = `(function(){
const out=[];
const lum=c=>{const m=c.match(/[\d.]+/g).map(Number);const f=v=>{v/=255;return v<=0.03928?v/12.92:Math.pow((v+0.055)/1.055,2.4)};return [0.2126*f(m[0])+0.7152*f(m[1])+0.0722*f(m[2]),m.length>3?m[3]:1]};
const bg=e=>{for(;e;e=e.parentElement){const c=getComputedStyle(e).backgroundColor;const m=c.match(/[\d.]+/g);if(m&&(m.length<4||Number(m[3])>0.5))return c}return "rgb(255,255,255)"};
const visible=e=>{const r=e.getBoundingClientRect();const s=getComputedStyle(e);return r.width>1&&r.height>1&&s.visibility!=="hidden"&&s.display!=="none"};
for(const e of document.querySelectorAll("input,select,textarea")){if(e.type==="hidden")continue;if(!(e.labels&&e.labels.length)&&!e.getAttribute("aria-label")&&!e.getAttribute("aria-labelledby"))out.push("no label: "+e.outerHTML.slice(0,80))}
for(const e of document.querySelectorAll("button,a[href]")){if(!visible(e))continue;if(!(e.textContent.trim()||e.getAttribute("aria-label")))out.push("no name: "+e.outerHTML.slice(0,80))}
for(const e of document.querySelectorAll("body *")){if(!visible(e))continue;const own=[...e.childNodes].some(n=>n.nodeType===3&&n.textContent.trim());if(!own)continue;const s=getComputedStyle(e);if(Number(s.opacity)<1)continue;const [a]=lum(s.color),[b]=lum(bg(e));const r=(Math.max(a,b)+0.05)/(Math.min(a,b)+0.05);if(r<4.5)out.push("contrast "+r.toFixed(2)+": "+e.tagName+" "+e.textContent.trim().slice(0,40))}
if(document.documentElement.scrollWidth>window.innerWidth+1)out.push("page wider than the viewport: "+document.documentElement.scrollWidth+" > "+window.innerWidth);
return out.join("\n")})()`

// checkAccessible fails the test on what accessibilityProblems finds in the
// page as it is now.
func (b *browser) checkAccessible(t *testing.T, where string) {
	t.Helper()
	if p := b.eval(t, accessibilityProblems); p != "" {
		t.Errorf("accessibility, %s:\n%s", where, p)
	}
}

// tabTo presses Tab until the element matching the CSS selector has focus
// (at most 40 times), proving it is reachable from the keyboard.
func (b *browser) tabTo(t *testing.T, sel string) {
	t.Helper()
	check := fmt.Sprintf(`document.activeElement===document.querySelector(%q)?"yes":""`, sel)
	for range 40 {
		if b.eval(t, check) == "yes" {
			return
		}
		b.do(t, "tab", chromedp.KeyEvent(kb.Tab))
	}
	t.Fatalf("browser: %s is not reachable with Tab", sel)
}
