package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// collector is the receiving end of OTLP/HTTP trace exports: no collector
// runs on this machine, so the test stands in for one at the edge.
type collector struct {
	mu    sync.Mutex
	spans map[string]bool
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.spans[s.Name] = true
			}
		}
	}
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

func (c *collector) has(pattern string) bool {
	re := regexp.MustCompile(pattern)
	c.mu.Lock()
	defer c.mu.Unlock()
	for name := range c.spans {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// Traffic moves the Prometheus counters; traces of HTTP, the GraphQL
// operation, its resolvers and SQL reach an OTLP collector; pprof is on the
// metrics listener only when asked for; on SIGTERM /readyz fails first.
func TestE2E_MetricsTracingPprofAndDraining(t *testing.T) {
	t.Parallel()
	col := &collector{spans: map[string]bool{}}
	otlp := httptest.NewServer(col)
	defer otlp.Close()
	s := startServe(t, "METRICS_ADDR=127.0.0.1:0", "PPROF=true", "OTEL_EXPORTER_OTLP_ENDPOINT="+otlp.URL, "DRAIN_DELAY=3s")
	r := postGraphQL(t, s.url, "", `mutation { login(input: {identifier: "admin", password: "usergraph-demo-admin"}) { token } }`)
	token := r["data"].(map[string]any)["login"].(map[string]any)["token"].(string)
	for range 3 {
		postGraphQL(t, s.url, token, `query Admins { users(first: 20) { nodes { id roles { name } groups(first: 3) { nodes { name } } } } }`)
	}

	m := regexp.MustCompile(`metrics are served" url=(http://[0-9.:]+)/metrics`).FindStringSubmatch(s.logs.String())
	if m == nil {
		t.Fatalf("no metrics address logged:\n%s", s.logs.String())
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	value := func(metrics, series string) float64 {
		for _, line := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(line, series+" ") {
				v, _ := strconv.ParseFloat(strings.TrimPrefix(line, series+" "), 64)
				return v
			}
		}
		return 0
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, metrics := get(m[1] + "/metrics")
		moved := map[string]bool{
			"http requests":    value(metrics, `usergraph_http_requests_total{code="200",method="POST",path="/graphql"}`) >= 4,
			"named operations": value(metrics, `usergraph_graphql_operations_total{operation="Admins",outcome="ok",type="query"}`) == 3,
			// The response cache answers the second and third.
			"resolvers":   value(metrics, `usergraph_graphql_resolver_duration_seconds_count{field="Query.users"}`) >= 1,
			"sql":         value(metrics, `usergraph_sql_statement_duration_seconds_count{outcome="ok"}`) > 0,
			"statements":  value(metrics, `usergraph_sql_statements_per_request_count`) >= 4,
			"dataloaders": value(metrics, `usergraph_dataloader_batch_size_count{loader="rolesOfUser"}`) >= 1,
			"pool":        value(metrics, `usergraph_db_pool_max_connections`) > 0,
			"jobs":        value(metrics, `usergraph_jobs_worked_total{kind="maintenance",outcome="ok"}`) >= 1,
			"cache":       strings.Contains(metrics, `usergraph_cache_lookups_total{cache="response"`),
		}
		var missing []string
		for what, ok := range moved {
			if !ok {
				missing = append(missing, what)
			}
		}
		traced := col.has(`^POST /graphql$`) && col.has(`^graphql query Admins$`) && col.has(`^Query\.users$`) && col.has(`(?i)select|query`)
		if len(missing) == 0 && traced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after traffic: metrics not moved %v; spans %v\n%s", missing, col.spans, metrics)
		}
		time.Sleep(200 * time.Millisecond) // the span exporter batches
	}
	if code, body := get(m[1] + "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof on the metrics listener: %d", code)
	}
	if code, _ := get(s.url + "/debug/pprof/"); code == 200 {
		t.Error("pprof is reachable on the API listener")
	}

	// A slow client (headers trickling in, or never finished) is cut off
	// after the read-header timeout while others are served.
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /graphql HTTP/1.1\r\nHost: usergraph\r\nContent-Type: app")); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(s.url + "/healthz"); code != 200 {
		t.Fatalf("/healthz while a slow client hangs: %d", code)
	}
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	start := time.Now()
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("the slow client was not cut off: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the slow client was cut off after %s", d)
	}

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Second)
	for {
		code, body := get(s.url + "/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "draining") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not fail while draining: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := get(s.url + "/healthz"); code != 200 {
		t.Errorf("/healthz while draining: %d, want 200 (the process is alive)", code)
	}
	// Still serving while draining, over kept-alive connections too.
	kept := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	ask := func() *http.Response {
		t.Helper()
		resp, err := kept.Post(s.url+"/graphql", "application/json", strings.NewReader(`{"query":"{ __typename }"}`))
		if err != nil {
			t.Fatalf("a request while shutting down: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := ask(); resp.StatusCode != http.StatusOK || resp.Close {
		t.Errorf("a request while draining: status %d, Connection: close %t; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	// After the delay the listener closes: new connections are refused,
	// and the kept-alive one gets its next answer, then is closed.
	host := strings.TrimPrefix(s.url, "http://")
	deadline = time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", host)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener was not closed after DRAIN_DELAY")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp := ask(); resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("a request on a kept-alive connection after the listener closed: status %d, Connection: close %t; want 200 and close", resp.StatusCode, resp.Close)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}
