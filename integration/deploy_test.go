package integration

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// parseEnvFile reads an environment file by the rules of systemd.exec(5),
// EnvironmentFile=: lines starting with # or ; are comments; a line is
// KEY=VALUE with whitespace around KEY and before VALUE dropped; a value in
// double quotes keeps its spaces and takes \" \\ \$ \` escapes, one in
// single quotes is literal; an unquoted value has its trailing whitespace
// dropped and a backslash escapes the next character; a backslash at the
// end of a line joins the next. A "#" after a value is part of the value:
// systemd has no trailing comments. Lines without "=" are ignored, as
// systemd ignores them (with a warning).
func parseEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	var pending string
	for sc.Scan() {
		line := pending + sc.Text()
		pending = ""
		if strings.HasSuffix(line, `\`) && !strings.HasSuffix(line, `\\`) {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		line = strings.TrimLeft(line, " \t")
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		key, raw, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key = strings.TrimSpace(key)
		raw = strings.TrimLeft(raw, " \t")
		var val strings.Builder
		switch {
		case strings.HasPrefix(raw, `"`):
			for i := 1; i < len(raw) && raw[i] != '"'; i++ {
				if raw[i] == '\\' && i+1 < len(raw) && strings.ContainsRune("\"\\$`", rune(raw[i+1])) {
					i++
				}
				val.WriteByte(raw[i])
			}
		case strings.HasPrefix(raw, "'"):
			v, _, _ := strings.Cut(raw[1:], "'")
			val.WriteString(v)
		default:
			raw = strings.TrimRight(raw, " \t")
			for i := 0; i < len(raw); i++ {
				if raw[i] == '\\' && i+1 < len(raw) {
					i++
				}
				val.WriteByte(raw[i])
			}
		}
		out[key] = val.String()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseEnvFileSystemdRules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	os.WriteFile(path, []byte("# comment\n; comment\n  A=1\nB = two words  \n"+
		"C=x   # not a comment\nD=\"quoted \\\"q\\\" # kept\"\nE='single $x'\nF=a\\\nb\nnovalue\n"), 0o600)
	got := parseEnvFile(t, path)
	want := map[string]string{"A": "1", "B": "two words", "C": "x   # not a comment",
		"D": `quoted "q" # kept`, "E": "single $x", "F": "ab"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("parsed %q; want %q", got, want)
	}
}

// unitFile is what TestDeployRecipeStarts reads from keybrake.service.
type unitFile struct {
	environment      map[string]string
	environmentFile  string
	execStart        []string
	execReload       []string
	runtimeDirectory string
	workingDirectory string
}

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unitFile{environment: map[string]string{}}
	for _, line := range strings.Split(string(b), "\n") {
		key, val, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		switch key {
		case "Environment":
			for _, kv := range strings.Fields(val) {
				k, v, _ := strings.Cut(kv, "=")
				u.environment[k] = v
			}
		case "EnvironmentFile":
			u.environmentFile = val
		case "ExecStart":
			u.execStart = strings.Fields(val)
		case "ExecReload":
			u.execReload = strings.Fields(val)
		case "RuntimeDirectory":
			u.runtimeDirectory = val
		case "WorkingDirectory":
			u.workingDirectory = val
		}
	}
	if u.environmentFile == "" || len(u.execStart) == 0 || u.runtimeDirectory == "" || u.workingDirectory == "" {
		t.Fatalf("keybrake.service lacks what the test runs: %+v", u)
	}
	return u
}

// TestDeployRecipeStarts starts examples/deploy/Caddyfile as
// keybrake.service's ExecStart would: the unit's Environment= and
// WorkingDirectory=, the env file (keybrake.env.example, read by systemd's
// rules) with the host and paths of this machine, and the unit's paths
// mapped into a temp dir. Once with the unit's RuntimeDirectory made (and
// RUNTIME_DIRECTORY set, as systemd does), where ExecReload must reach the
// admin socket; once without it, as a run by hand or the caddy image (its
// working directory /srv) would be, where the socket is in the working
// directory. Both must serve the key API.
func TestDeployRecipeStarts(t *testing.T) {
	need(t, false)
	unit := parseUnit(t, "../examples/deploy/keybrake.service")
	fileEnv := parseEnvFile(t, "../examples/deploy/keybrake.env.example")
	for _, k := range []string{"KEYBRAKE_HOST", "KEYBRAKE_LEDGER", "KEYBRAKE_API_TOKEN", "STRIPE_SECRET_KEY",
		"KEYBRAKE_WEBHOOK_URL", "KEYBRAKE_WEBHOOK_SECRET"} {
		if v := fileEnv[k]; v == "" || strings.ContainsAny(v, " #") {
			t.Errorf("keybrake.env.example: %s=%q; want one value, nothing after it", k, v)
		}
	}
	caddyfile, _ := filepath.Abs("../examples/deploy/Caddyfile")
	for _, runtimeDir := range []bool{true, false} {
		t.Run(fmt.Sprintf("RuntimeDirectory=%v", runtimeDir), func(t *testing.T) {
			tmp := t.TempDir()
			// The unit's absolute paths, inside tmp.
			paths := strings.NewReplacer("/usr/local/bin/keybrake", env.caddyBin,
				"/etc/keybrake/Caddyfile", caddyfile, "/var/lib/keybrake", filepath.Join(tmp, "var-lib"),
				"/run/", filepath.Join(tmp, "run")+"/")
			workDir := paths.Replace(unit.workingDirectory)
			os.MkdirAll(workDir, 0o700)
			port := freePort()
			vars := map[string]string{"PATH": os.Getenv("PATH"), "HOME": tmp}
			for k, v := range unit.environment {
				vars[k] = paths.Replace(v)
			}
			for k, v := range fileEnv {
				vars[k] = paths.Replace(v)
			}
			// What an operator puts in the env file on this machine: a plain
			// HTTP address (no certificate), a webhook receiver that is down.
			vars["KEYBRAKE_HOST"] = fmt.Sprintf("http://127.0.0.1:%d", port)
			vars["KEYBRAKE_WEBHOOK_URL"] = fmt.Sprintf("http://127.0.0.1:%d/hook", freePort())
			socket := filepath.Join(workDir, "keybrake-admin.sock")
			if runtimeDir {
				rd := filepath.Join(tmp, "run", unit.runtimeDirectory)
				os.MkdirAll(rd, 0o755)
				vars["RUNTIME_DIRECTORY"] = rd
				socket = filepath.Join(rd, "keybrake-admin.sock")
			}
			var environ []string
			for k, v := range vars {
				environ = append(environ, k+"="+v)
			}
			args := strings.Fields(paths.Replace(strings.Join(unit.execStart, " ")))
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Dir, cmd.Env = workDir, environ
			logPath := filepath.Join(tmp, "caddy.log")
			logFile, _ := os.Create(logPath)
			cmd.Stdout, cmd.Stderr = logFile, logFile
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(15 * time.Second):
					_ = cmd.Process.Kill()
				}
				if t.Failed() {
					b, _ := os.ReadFile(logPath)
					t.Logf("caddy log:\n%s", tail(string(b), 4000))
				}
			})
			url := vars["KEYBRAKE_HOST"]
			waitServing(t, url+"/vault/whoami", exited)
			req, _ := http.NewRequest("GET", url+"/vault/whoami", nil)
			req.Header.Set("Authorization", "Bearer "+fileEnv["KEYBRAKE_API_TOKEN"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("whoami with the env file's token: %v %v", resp, err)
			}
			resp.Body.Close()
			if fi, err := os.Stat(socket); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
				t.Fatalf("admin socket %s: %v %v; want an owner-only socket", socket, fi, err)
			}
			if runtimeDir {
				// ExecReload, as systemctl reload runs it.
				args := strings.Fields(paths.Replace(strings.Join(unit.execReload, " ")))
				reload := exec.Command(args[0], args[1:]...)
				reload.Dir, reload.Env = workDir, environ
				if out, err := reload.CombinedOutput(); err != nil {
					t.Fatalf("ExecReload: %v\n%s", err, out)
				}
			}
		})
	}
}

// waitServing waits, at most a minute, for url to answer; a process that
// exits first (a recipe that does not start) fails the test at once.
func waitServing(t *testing.T, url string, exited <-chan error) {
	t.Helper()
	for range 600 {
		select {
		case err := <-exited:
			t.Fatalf("the recipe exited before serving %s: %v", url, err)
		default:
		}
		if waitHTTP(url, 100*time.Millisecond) == nil {
			return
		}
	}
	t.Fatalf("the recipe did not start: %s never answered", url)
}

// TestDocsAlertsExampleAdapts: the Caddyfile block of docs/alerts.md, every
// option as shown, is accepted by bin/caddy.
func TestDocsAlertsExampleAdapts(t *testing.T) {
	need(t, false)
	block := docBlock(t, "../docs/alerts.md", "caddyfile", "webhook_delivery {")
	path := filepath.Join(t.TempDir(), "Caddyfile")
	os.WriteFile(path, []byte(block+"\nhttp://127.0.0.1:9 {\n\tkeybrake_api\n}\n"), 0o600)
	out, err := exec.Command(env.caddyBin, "adapt", "--config", path, "--adapter", "caddyfile").CombinedOutput()
	if err != nil {
		t.Fatalf("docs/alerts.md's example does not adapt: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"give_up_after"`) {
		t.Fatalf("webhook_delivery missing from the adapted config:\n%s", out)
	}
}

// TestDockerBuildSteps runs examples/deploy/Dockerfile's build stage as its
// steps, without Docker: `COPY . .` takes the repository less .dockerignore,
// so bin/ (a bin/caddy built for this machine, maybe with other plugins) is
// not copied and `make build XCADDY_WITH=…` in the image builds; and in a
// tree where bin/caddy is up to date, a different XCADDY_WITH still
// rebuilds it (make -n: what make would run).
func TestDockerBuildSteps(t *testing.T) {
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var excluded []string
	for _, line := range strings.Split(string(ignore), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			excluded = append(excluded, line)
		}
	}
	for _, want := range []string{"bin/", "*.db", "node_modules/", ".cache/"} {
		if !strings.Contains(string(ignore), "\n"+want+"\n") {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
	// COPY . . of a tree with a built bin/caddy and a ledger.
	makefile, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	src, dst := t.TempDir(), t.TempDir()
	for _, f := range []string{"go.mod", "go.sum", "main.go", "keybrake.db", "bin/caddy"} {
		os.MkdirAll(filepath.Dir(filepath.Join(src, f)), 0o755)
		os.WriteFile(filepath.Join(src, f), []byte("x"), 0o644)
	}
	os.WriteFile(filepath.Join(src, "Makefile"), makefile, 0o644)
	// The sources an hour old, bin/caddy built after them.
	for _, f := range []string{"go.mod", "go.sum", "main.go", "Makefile", "bin/caddy"} {
		age := -time.Hour
		if f == "bin/caddy" {
			age = -time.Minute
		}
		os.Chtimes(filepath.Join(src, f), time.Now().Add(age), time.Now().Add(age))
	}
	copyTree(t, src, dst, excluded)
	for _, gone := range []string{"bin", "keybrake.db"} {
		if _, err := os.Stat(filepath.Join(dst, gone)); err == nil {
			t.Errorf("COPY . . carries %s into the image", gone)
		}
	}
	wouldBuild := func(dir string, args ...string) bool {
		t.Helper()
		out, err := exec.Command("make", append([]string{"-C", dir, "-n", "build"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("make -n build %v: %v\n%s", args, err, out)
		}
		return strings.Contains(string(out), "xcaddy")
	}
	if !wouldBuild(dst, "XCADDY_WITH=--with github.com/mholt/caddy-l4") {
		t.Error("in the image, make build would not build bin/caddy")
	}
	// Where bin/caddy is current: nothing to do, until XCADDY_WITH changes.
	if wouldBuild(src) {
		t.Error("make build would rebuild an up-to-date bin/caddy")
	}
	if !wouldBuild(src, "XCADDY_WITH=--with github.com/mholt/caddy-l4") {
		t.Error("make build XCADDY_WITH=… would not rebuild bin/caddy")
	}
}

// copyTree copies src to dst leaving out what matches a .dockerignore line
// (a name or glob, "dir/" for a directory), as docker build's context does
// for these simple patterns.
func copyTree(t *testing.T, src, dst string, excluded []string) {
	t.Helper()
	filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		for _, pat := range excluded {
			dirOnly := strings.HasSuffix(pat, "/")
			if ok, _ := filepath.Match(strings.TrimSuffix(pat, "/"), rel); ok && (!dirOnly || d.IsDir()) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, _ := os.ReadFile(p)
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}
