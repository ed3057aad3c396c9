package scaletest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// client is shared by the load and the checks: keep-alive connections to
// the balancer, as a real front end keeps them.
var client = &http.Client{
	Timeout:   20 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
}

// result is one GraphQL answer as the client saw it.
type result struct {
	status int
	data   map[string]any
	errors []map[string]any
	err    error
}

func (r result) ok() bool { return r.err == nil && r.status == http.StatusOK && len(r.errors) == 0 }

// code is the first error's extensions.code.
func (r result) code() string {
	if len(r.errors) == 0 {
		return ""
	}
	ext, _ := r.errors[0]["extensions"].(map[string]any)
	c, _ := ext["code"].(string)
	return c
}

func (r result) String() string {
	if r.err != nil {
		return "transport error: " + r.err.Error()
	}
	b, _ := json.Marshal(r.errors)
	return fmt.Sprintf("HTTP %d, errors %s", r.status, b)
}

// field walks the data by a dotted path.
func (r result) field(path string) any {
	var v any = r.data
	for _, k := range strings.Split(path, ".") {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

func (r result) str(path string) string {
	s, _ := r.field(path).(string)
	return s
}

// post sends one GraphQL operation over POST.
func post(base, token, query string, vars map[string]any) result {
	return postFrom(base, token, "", query, vars)
}

// postFrom is post from the client address ip (an X-Forwarded-For the
// instances trust, as they would from their load balancer); "" sends none.
func postFrom(base, token, ip, query string, vars map[string]any) result {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	resp, err := client.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, err: err}
	if err == nil {
		var out struct {
			Data   map[string]any   `json:"data"`
			Errors []map[string]any `json:"errors"`
		}
		if jerr := json.Unmarshal(raw, &out); jerr != nil {
			r.err = fmt.Errorf("not JSON (%v): %.200s", jerr, raw)
		}
		r.data, r.errors = out.Data, out.Errors
	}
	return r
}

// mustPost fails the test unless the operation succeeds.
func mustPost(t testing.TB, base, token, query string, vars map[string]any) result {
	t.Helper()
	r := post(base, token, query, vars)
	if !r.ok() {
		t.Fatalf("%s\n%s", query, r)
	}
	return r
}

func login(t testing.TB, base, identifier string) string {
	t.Helper()
	return loginFrom(t, base, "", identifier)
}

// loginFrom logs in from the client address ip with the shared password.
func loginFrom(t testing.TB, base, ip, identifier string) string {
	t.Helper()
	r := postFrom(base, "", ip, `mutation($i: LoginInput!) { login(input: $i) { token } }`,
		map[string]any{"i": map[string]any{"identifier": identifier, "password": password}})
	if !r.ok() {
		t.Fatalf("login as %s: %s", identifier, r)
	}
	return r.str("login.token")
}

// outcome is one request of the load.
type outcome struct {
	op         string
	start, end time.Time
	res        result
	email      string // createUser: the address asked for
}

// load drives a steady mix of queries, mutations and logins through one
// URL until stopped, recording every request.
type load struct {
	base        string
	adminToken  string
	loginUser   string
	password    string
	targetUser  string // updateUser's subject
	workers     int
	pause       time.Duration
	stopFlag    atomic.Bool
	wg          sync.WaitGroup
	mu          sync.Mutex
	outcomes    []outcome
	emailPrefix string
	seq         atomic.Int64
}

var operations = []struct {
	name   string
	weight int
}{{"users", 45}, {"me", 20}, {"createUser", 15}, {"updateUser", 12}, {"login", 8}}

func (l *load) start() {
	for w := range l.workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for !l.stopFlag.Load() {
				l.one(rng)
				time.Sleep(l.pause)
			}
		}()
	}
}

// stop ends the load and returns every outcome.
func (l *load) stop() []outcome {
	l.stopFlag.Store(true)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.outcomes
}

func (l *load) one(rng *rand.Rand) {
	n := rng.IntN(100)
	op := operations[len(operations)-1].name
	for _, o := range operations {
		if n < o.weight {
			op = o.name
			break
		}
		n -= o.weight
	}
	o := outcome{op: op, start: time.Now()}
	switch op {
	case "users":
		o.res = post(l.base, l.adminToken, `{ users(first: 10) { edges { cursor node { id email username } } pageInfo { hasNextPage endCursor } } }`, nil)
	case "me":
		o.res = post(l.base, l.adminToken, `{ me { id email } }`, nil)
	case "createUser":
		n := l.seq.Add(1)
		o.email = fmt.Sprintf("%s-%d@example.com", l.emailPrefix, n)
		o.res = post(l.base, l.adminToken, `mutation($i: CreateUserInput!) { createUser(input: $i) { user { id email } } }`,
			map[string]any{"i": map[string]any{"email": o.email, "username": fmt.Sprintf("%s_%d", l.emailPrefix, n)}})
	case "updateUser":
		o.res = post(l.base, l.adminToken, `mutation($i: UpdateUserInput!) { updateUser(input: $i) { user { id displayName } } }`,
			map[string]any{"i": map[string]any{"id": l.targetUser, "displayName": fmt.Sprintf("load %d", rng.IntN(1_000_000))}})
	case "login":
		o.res = post(l.base, "", `mutation($i: LoginInput!) { login(input: $i) { token } }`,
			map[string]any{"i": map[string]any{"identifier": l.loginUser, "password": l.password}})
	}
	o.end = time.Now()
	l.mu.Lock()
	l.outcomes = append(l.outcomes, o)
	l.mu.Unlock()
}

// failures are the outcomes that did not succeed.
func failures(outcomes []outcome) []outcome {
	var out []outcome
	for _, o := range outcomes {
		if !o.res.ok() {
			out = append(out, o)
		}
	}
	return out
}

// summary counts outcomes per operation for the log.
func summary(outcomes []outcome) string {
	counts := map[string]int{}
	for _, o := range outcomes {
		counts[o.op]++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests:", len(outcomes))
	for _, op := range operations {
		fmt.Fprintf(&b, " %s=%d", op.name, counts[op.name])
	}
	return b.String()
}

func describe(fs []outcome, max int) string {
	var b strings.Builder
	for i, f := range fs {
		if i == max {
			fmt.Fprintf(&b, "... and %d more\n", len(fs)-max)
			break
		}
		fmt.Fprintf(&b, "%s at %s (%.0f ms): %s\n", f.op, f.start.Format("15:04:05.000"), f.end.Sub(f.start).Seconds()*1000, f.res)
	}
	return b.String()
}
