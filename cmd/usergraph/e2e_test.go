package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/usergraph/usergraph/playground/browsertest"
)

// binary is the usergraph executable built once for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "usergraph-e2e-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "usergraph")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building usergraph:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// started is a running `usergraph serve`.
type started struct {
	cmd     *exec.Cmd
	url     string
	logs    *logBuffer
	done    chan error
	dataDir string
}

// startServe runs `usergraph serve` on the embedded default in a fresh data
// directory and waits until it listens.
func startServe(t *testing.T, env ...string) *started {
	t.Helper()
	return startServeIn(t, reachableTempDir(t), env...)
}

// startServeIn is startServe on an existing data directory.
func startServeIn(t *testing.T, dataDir string, env ...string) *started {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--log-format", "text", "--data-dir", dataDir, "--demo-users", "120")
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "DATABASE_URL=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &started{cmd: cmd, logs: &logBuffer{}, done: make(chan error, 1), dataDir: dataDir}
	addr := make(chan string, 1)
	re := regexp.MustCompile(`graphql=(http://[0-9.:]+)/graphql`)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.logs.WriteString(line + "\n")
			if m := re.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})
	select {
	case s.url = <-addr:
	case err := <-s.done:
		t.Fatalf("usergraph exited before listening: %v\n%s", err, s.logs)
	case <-time.After(90 * time.Second):
		t.Fatalf("usergraph did not start in time:\n%s", s.logs)
	}
	return s
}

// logBuffer collects a process's log lines from its reader goroutine while
// the test reads them.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// reachableTempDir is a temporary directory the postgres user can enter
// (t.TempDir's parent is private to root).
func reachableTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "usergraph-e2e-data-*")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// sendGraphQL POSTs a GraphQL request body (query or persisted-query hash,
// variables, extensions) with an optional session token and returns the
// status and the raw answer.
func sendGraphQL(t *testing.T, url, token string, payload map[string]any) (int, []byte) {
	t.Helper()
	body, _ := json.Marshal(payload)
	req, _ := http.NewRequest(http.MethodPost, url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// postGraphQL runs query and fails the test unless it succeeds.
func postGraphQL(t *testing.T, url, token, query string) map[string]any {
	t.Helper()
	status, raw := sendGraphQL(t, url, token, map[string]any{"query": query})
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, raw)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("not JSON: %s", raw)
	}
	if out["errors"] != nil {
		t.Fatalf("errors: %s", raw)
	}
	return out
}

// The newcomer's path: serve on the embedded default (a private PostgreSQL
// from the local binaries, migrated and seeded with demo data), query it over
// HTTP, use the Playground in a real browser, stop with SIGTERM.
func TestE2E_ServeOnEmbeddedDefault(t *testing.T) {
	s := startServe(t)

	// The demo admin the embedded default creates, as the README says.
	login := postGraphQL(t, s.url, "", `mutation { login(input: {identifier: "admin@example.com", password: "usergraph-demo-admin"}) { token user { username } } }`)
	token := login["data"].(map[string]any)["login"].(map[string]any)["token"].(string)

	out := postGraphQL(t, s.url, token, `{ users(first: 5) { totalCount nodes { id email roles { name } groups(first: 2) { nodes { name } } } } }`)
	users := out["data"].(map[string]any)["users"].(map[string]any)
	if users["totalCount"].(float64) != 121 {
		t.Fatalf("want the 120 demo users and the demo admin, got %v", users["totalCount"])
	}
	if n := len(users["nodes"].([]any)); n != 5 {
		t.Fatalf("want 5 users, got %d", n)
	}
	if ext, ok := out["extensions"].(map[string]any); !ok || ext["sqlStatements"] == nil {
		t.Fatalf("development mode must report sqlStatements in extensions, got %v", out["extensions"])
	}

	// A new user's welcome email goes through a River job; without SMTP_URL
	// the embedded default writes it as an .eml file.
	postGraphQL(t, s.url, token, `mutation { createUser(input: {email: "newbie@example.com", username: "newbie"}) { user { id } } }`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(s.dataDir, "mail", "*.eml"))
		found := false
		for _, f := range files {
			if b, _ := os.ReadFile(f); strings.Contains(string(b), "newbie@example.com") {
				found = true
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no welcome .eml for the new user in %s", filepath.Join(s.dataDir, "mail"))
		}
		time.Sleep(100 * time.Millisecond) // polling a directory the worker writes, not timing the test
	}

	// Without a session the same query is refused, with a code.
	req, _ := http.NewRequest(http.MethodGet, s.url+"/graphql?query="+strings.ReplaceAll("{ users(first: 1) { nodes { id } } }", " ", "%20"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(raw), "UNAUTHENTICATED") {
		t.Fatalf("anonymous users query: want UNAUTHENTICATED, got %s", raw)
	}
	// GET is for queries, with the session as a bearer token.
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Contains(string(raw), "errors") {
		t.Fatalf("GET query: status %d: %s", resp.StatusCode, raw)
	}

	// The Playground, served from the binary, runs an operation in Chromium:
	// the demo admin's login, whose answer shows the user.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	result, err := browsertest.RunQuery(ctx, s.url+"/",
		`mutation { login(input: {identifier: "admin", password: "usergraph-demo-admin"}) { user { email roles { name } } } }`)
	if err != nil {
		t.Fatalf("Playground: %v", err)
	}
	if !strings.Contains(result, "admin@example.com") {
		t.Fatalf("Playground result does not show the logged-in user: %s", result)
	}

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
	}

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, s.logs)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no exit after SIGTERM:\n%s", s.logs)
	}
	if !strings.Contains(s.logs.String(), "PostgreSQL stopped") && !strings.Contains(s.logs.String(), "stopped") {
		t.Fatalf("shutdown not logged:\n%s", s.logs)
	}
}

// Misconfiguration stops the process with one line naming the setting.
func TestE2E_BadSettingsFailWithOneLineNamingTheSetting(t *testing.T) {
	t.Parallel()
	emptyDir := t.TempDir()
	cases := []struct {
		env  []string
		want string
	}{
		{[]string{"DB_MAX_CONNS=-1"}, "DB_MAX_CONNS"},
		{[]string{"LOG_LEVEL=loud"}, "LOG_LEVEL"},
		{[]string{"ADDR=nonsense"}, "ADDR"},
		{[]string{"MODE=staging"}, "MODE"},
		{[]string{"DATABASE_URL=postgres://%zz"}, "DATABASE_URL"},
		{[]string{"REDIS_URL=http://nope"}, "REDIS_URL"},
		{[]string{"PG_BIN_DIR=" + emptyDir, "DATA_DIR=" + t.TempDir()}, "PostgreSQL server binaries not found"},
	}
	for _, tc := range cases {
		cmd := exec.Command(binary, "serve")
		cmd.Env = append(append(os.Environ(), "DATABASE_URL="), tc.env...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("%v: want a failure, got success", tc.env)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, "usergraph: ") || !strings.Contains(last, tc.want) {
			t.Fatalf("%v: want a last line 'usergraph: ...%s...', got:\n%s", tc.env, tc.want, out)
		}
		if strings.Contains(string(out), "goroutine ") || strings.Contains(string(out), "panic") {
			t.Fatalf("%v: stack trace in output:\n%s", tc.env, out)
		}
	}
}

// Every command has --help.
func TestE2E_EveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"migrate", "--help"}, {"migrate", "up", "--help"},
		{"migrate", "down", "--help"}, {"migrate", "status", "--help"}, {"seed", "--help"}, {"worker", "--help"}, {"admin", "create", "--help"}} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "USAGE") {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
}

// migrate up, status and down round-trip on the embedded default.
func TestE2E_MigrateUpStatusDown(t *testing.T) {
	t.Parallel()
	dataDir := reachableTempDir(t)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, append(args, "--data-dir", dataDir, "--log-format", "text")...)
		cmd.Env = append(os.Environ(), "DATABASE_URL=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("migrate", "status"); !strings.Contains(out, "00001_core.sql") || !strings.Contains(out, "pending") {
		t.Fatalf("before up, want 00001 pending:\n%s", out)
	}
	run("migrate", "up")
	if out := run("migrate", "status"); !strings.Contains(out, "applied") || strings.Contains(out, "pending") {
		t.Fatalf("after up, want everything applied:\n%s", out)
	}
	run("migrate", "down")
	if out := run("migrate", "status"); !strings.Contains(out, "pending") {
		t.Fatalf("after down, want 00001 pending again:\n%s", out)
	}
	if out := run("seed", "--users", "50", "--progress=false"); !strings.Contains(out, "seeded 50 users") {
		t.Fatalf("seed on the embedded default (migrating first):\n%s", out)
	}
}

// `usergraph admin create` makes the first administrator; the password can
// come from standard input so it stays out of the process list.
func TestE2E_AdminCreateFromStdin(t *testing.T) {
	t.Parallel()
	dataDir := reachableTempDir(t)
	cmd := exec.Command(binary, "admin", "create", "--email", "root@example.com", "--username", "root", "--data-dir", dataDir)
	cmd.Env = append(os.Environ(), "DATABASE_URL=", "ADMIN_PASSWORD=")
	cmd.Stdin = strings.NewReader("a long admin passphrase\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "created admin root") {
		t.Fatalf("admin create: %v\n%s", err, out)
	}
	// A common password is refused with the setting named.
	cmd = exec.Command(binary, "admin", "create", "--email", "r2@example.com", "--username", "root2", "--password", "password123", "--data-dir", dataDir)
	cmd.Env = append(os.Environ(), "DATABASE_URL=")
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "usergraph: password:") {
		t.Fatalf("admin create with a common password: %v\n%s", err, out)
	}
}

// `usergraph worker` runs the workers alone and stops cleanly on SIGTERM.
func TestE2E_WorkerRunsAndStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	dataDir := reachableTempDir(t)
	cmd := exec.Command(binary, "worker", "--data-dir", dataDir, "--log-format", "text")
	cmd.Env = append(os.Environ(), "DATABASE_URL=")
	var logs bytes.Buffer
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	running := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if !signalled && strings.Contains(sc.Text(), "workers running") {
				signalled = true
				close(running)
			}
		}
		done <- cmd.Wait()
	}()
	select {
	case <-running:
	case err := <-done:
		t.Fatalf("worker exited early: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("worker did not start in time")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil || !strings.Contains(logs.String(), "workers stopped") {
			t.Fatalf("worker exit: %v\n%s", err, logs.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("worker did not stop after SIGTERM")
	}
}
