// Command bench is `make bench`: Usergraph at a million users on this
// machine, driven by wrk over 32 keep-alive connections, each workload
// reported as a ratio to a minimal Go handler measured in the same run
// (absolute figures drift on a shared machine; ratios much less).
//
// It starts a private PostgreSQL and Redis, seeds with `usergraph seed`,
// runs `usergraph serve` in production mode, and writes the table to
// stdout and bench/results/.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/embeddedpg"
	"github.com/usergraph/usergraph/model"
)

type options struct {
	users       int
	duration    time.Duration
	warmup      time.Duration
	connections int
	only        string
	out         string
	keep        bool
	profiles    bool
}

func main() {
	var o options
	flag.IntVar(&o.users, "users", 1_000_000, "users to seed")
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "measured time per workload")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "unmeasured time before each workload")
	flag.IntVar(&o.connections, "connections", 32, "keep-alive connections")
	flag.StringVar(&o.only, "only", "", "comma-separated workloads and figures to run, such as Q1,Q7,J1,F1,X1 (default: all)")
	flag.StringVar(&o.out, "out", "bench/results", "where the results table is written")
	flag.BoolVar(&o.keep, "keep", false, "keep the data directory")
	flag.BoolVar(&o.profiles, "profiles", false, "write the server's CPU and allocation profiles of each workload beside the results (costs a few percent)")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// PostgreSQL settings for the run: sized for a 2-core, 24 GiB machine,
// durability kept (synchronous commit stays on: M1 measures real commits).
var pgSettings = map[string]string{
	"shared_buffers":       "2GB",
	"effective_cache_size": "8GB",
	"work_mem":             "16MB",
	"maintenance_work_mem": "512MB",
	"max_wal_size":         "4GB",
	"checkpoint_timeout":   "15min",
	"random_page_cost":     "1.1",
	"max_connections":      "100",
}

type workload struct {
	name, what string
	bodies     []string
	unique     bool   // %d in the body becomes a number unique to the run
	gzip       bool   // asks for gzip, as browsers do
	cached     bool   // sent to the instance with the response cache
	target     string // "" for /graphql
}

type result struct {
	workload
	load
	ratio, stmtsPerReq, cpuMsPerReq float64 // -1: not measured
	rss                             int64   // the server's peak during the workload, bytes; 0: not measured
}

func run(ctx context.Context, o options) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	work, err := os.MkdirTemp("", "usergraph-bench-*")
	if err != nil {
		return err
	}
	_ = os.Chmod(work, 0o755)
	if !o.keep {
		defer os.RemoveAll(work)
	}
	bin := filepath.Join(work, "usergraph")
	step("building usergraph")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/usergraph").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}

	step("starting PostgreSQL (tuned: shared_buffers=2GB, work_mem=16MB, max_wal_size=4GB, random_page_cost=1.1; glibc trim threshold 32 MiB)")
	pgDir := filepath.Join(work, "pg")
	pg, err := embeddedpg.Start(ctx, embeddedpg.Config{DataDir: pgDir, Settings: pgSettings, Logger: log})
	if err != nil {
		return err
	}
	defer pg.Stop(context.Background())
	redisURL, stopRedis, err := startRedis(work)
	if err != nil {
		return err
	}
	defer stopRedis()

	env := append(os.Environ(), "DATABASE_URL="+pg.URL(), "LOG_LEVEL=warn", "LOG_FORMAT=text")
	tool := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := tool("migrate", "up"); err != nil {
		return fmt.Errorf("migrate: %v\n%s", err, out)
	}
	step(fmt.Sprintf("seeding %d users with usergraph seed", o.users))
	start := time.Now()
	out, err := tool("seed", "--users", strconv.Itoa(o.users), "--progress=false")
	if err != nil {
		return fmt.Errorf("seed: %v\n%s", err, out)
	}
	seedTime := time.Since(start)
	fmt.Printf("seeded %d users in %.1f s: %s", o.users, seedTime.Seconds(), out)
	// A table in service has been vacuumed: its visibility map is current,
	// so index-only scans skip the heap. Right after a bulk load it is not,
	// and autovacuum would catch up during the first workloads, whose
	// PostgreSQL CPU would then include it.
	step("vacuuming the seeded tables")
	if err := vacuum(ctx, pg.URL()); err != nil {
		return err
	}
	const password = "bench-admin-passphrase-2026"
	adminCmd := exec.CommandContext(ctx, bin, "admin", "create", "--email", "bench@example.com", "--username", "bench-admin")
	adminCmd.Env, adminCmd.Stdin = env, strings.NewReader(password+"\n")
	if out, err := adminCmd.CombinedOutput(); err != nil {
		return fmt.Errorf("admin create: %v\n%s", err, out)
	}

	// Two API instances: the response cache off for Q1-Q6 and the
	// mutations, so they measure the work itself; on for Q7. The request
	// budget and the login address limit are off: one client sends
	// everything. Jobs run in a worker process of their own, as in
	// production, so the export (X1) can be measured apart.
	exportDir := filepath.Join(work, "exports")
	env = append(env, "EXPORT_DIR="+exportDir, "REDIS_URL="+redisURL)
	step("starting usergraph worker")
	worker := exec.CommandContext(ctx, bin, "worker")
	worker.Env = append(env, "EMAIL_CONCURRENCY=50")
	workerLog, _ := os.Create(filepath.Join(work, "worker.log"))
	worker.Stdout, worker.Stderr = workerLog, workerLog
	if err := worker.Start(); err != nil {
		return fmt.Errorf("usergraph worker: %w", err)
	}
	defer func() { _ = worker.Process.Signal(os.Interrupt); _ = worker.Wait() }()
	start2 := func(name string, extra ...string) (*exec.Cmd, string, string, error) {
		addr, metricsAddr := freeAddr(), freeAddr()
		cmd := exec.CommandContext(ctx, bin, "serve")
		cmd.Env = append(append(env, "ADDR="+addr, "MODE=production", "WORKERS=false", "METRICS_ADDR="+metricsAddr,
			"RATE_LIMIT_POINTS=0", "LOGIN_IP_LIMIT=100000000", "DRAIN_DELAY=0s", "PUBLIC_URL=http://"+addr,
			"PPROF="+strconv.FormatBool(o.profiles)), extra...)
		logf, _ := os.Create(filepath.Join(work, name+".log"))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return nil, "", "", err
		}
		return cmd, "http://" + addr, metricsAddr, waitReady("http://" + addr + "/readyz")
	}
	step("starting usergraph serve twice (production mode, log level warn; response cache off / on)")
	serve, api, metricsAddr, err := start2("serve", "RESPONSE_CACHE=false")
	if serve != nil {
		defer func() { _ = serve.Process.Signal(os.Interrupt); _ = serve.Wait() }()
	}
	if err != nil {
		return err
	}
	cachedServe, cachedAPI, cachedMetrics, err := start2("serve-cached")
	if cachedServe != nil {
		defer func() { _ = cachedServe.Process.Signal(os.Interrupt); _ = cachedServe.Wait() }()
	}
	if err != nil {
		return err
	}
	token, err := login(api, password)
	if err != nil {
		return err
	}

	ceiling, stopCeiling, err := startCeiling(ceilingBody, "")
	if err != nil {
		return err
	}
	defer stopCeiling()

	loads, err := workloads(ctx, pg.URL(), cachedAPI, token)
	if err != nil {
		return err
	}
	// Q7's and Q7gz's floors: the same minimal handler answering their own
	// bytes, so what any cache can reach with answers that size is in the
	// table. Q7gz's answer is checked here to decode to Q7's; its load only
	// checks that each answer is a gzipped 200.
	q7Answer, _, err := answerTo(cachedAPI+"/graphql", token, loads, "Q7")
	if err != nil {
		return err
	}
	q7Zipped, encoding, err := answerTo(cachedAPI+"/graphql", token, loads, "Q7gz")
	if err != nil {
		return err
	}
	// addFloors adds the two floors under name, whose answer is body sent
	// with encoding: name-ceiling, the minimal handler answering body, and
	// name-roundtrip, the same making the one Redis read Q7 made on every
	// request before memory copies (MEMORY_COPIES=false still does). stop
	// stops both handlers.
	addFloors := func(name string, body []byte, encoding string) (stop func(), err error) {
		size := fmt.Sprintf("%d bytes", len(body))
		if encoding == "gzip" {
			size += " gzipped"
		}
		floors := []struct {
			name, what string
			start      func() (string, func(), error)
		}{
			{name + "-ceiling", fmt.Sprintf("the minimal handler answering Q7's %s: %s's floor", size, name),
				func() (string, func(), error) { return startCeiling(body, encoding) }},
			{name + "-roundtrip", name + "'s floor with one Redis read (session, generation, digest), as without memory copies",
				func() (string, func(), error) { return startRoundTripFloor(ctx, redisURL, body, encoding) }},
		}
		var stops []func()
		stop = func() {
			for _, s := range stops {
				s()
			}
		}
		for _, f := range floors {
			url, s, err := f.start()
			if err != nil {
				stop()
				return nil, err
			}
			stops = append(stops, s)
			loads = append(loads, workload{name: f.name, what: f.what, target: url, gzip: encoding == "gzip"})
		}
		return stop, nil
	}
	stopQ7, err := addFloors("Q7", q7Answer, "")
	if err != nil {
		return err
	}
	defer stopQ7()
	switch decoded, err := gunzip(q7Zipped); {
	case encoding == "": // COMPRESS=false in the environment: nothing to measure
		fmt.Fprintln(os.Stderr, "Q7gz left out: the server does not compress (COMPRESS=false?)")
		loads = slices.DeleteFunc(loads, func(w workload) bool { return w.gzip })
	case encoding != "gzip" || err != nil || !bytes.Equal(decoded, q7Answer):
		return fmt.Errorf("Q7gz's answer (Content-Encoding %q) does not decode to Q7's (%v)", encoding, err)
	default:
		stopQ7gz, err := addFloors("Q7gz", q7Zipped, "gzip")
		if err != nil {
			return err
		}
		defer stopQ7gz()
	}
	pgPID := postmasterPID(pgDir)
	profileDir := ""
	if o.profiles {
		profileDir = filepath.Join(o.out, "profiles-"+time.Now().UTC().Format("20060102-150405"))
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			return err
		}
	}
	var results []result
	var ceilingRPS float64
	for _, w := range append([]workload{{name: "ceiling", what: "a minimal Go handler answering 200 bytes of JSON", target: ceiling}}, loads...) {
		if base, _, _ := strings.Cut(w.name, "-"); w.name != "ceiling" && !o.runs(base) { // a floor goes with its workload
			continue
		}
		warm, err := luaScript(work, w.name+"-warmup", token, w.bodies, w.unique, w.gzip)
		if err != nil {
			return err
		}
		script, err := luaScript(work, w.name, token, w.bodies, w.unique, w.gzip)
		if err != nil {
			return err
		}
		srv, url, metrics := serve, api+"/graphql", metricsAddr
		if w.cached {
			srv, url, metrics = cachedServe, cachedAPI+"/graphql", cachedMetrics
		}
		if w.target != "" {
			url = w.target
		}
		step(fmt.Sprintf("%s: %s", w.name, w.what))
		if _, err := runWrk(ctx, url, warm, o.connections, o.warmup); err != nil {
			return err
		}
		sum0, count0 := scrape(metrics)
		resetPeakRSS(srv.Process.Pid)
		// The server's and PostgreSQL's CPU; a minimal handler's is this
		// process's own.
		cpu := func() int64 {
			if w.target != "" {
				return cpuTicks(os.Getpid())
			}
			n := cpuTicks(srv.Process.Pid) + cpuTicks(pgPID)
			for _, c := range children(pgPID) {
				n += cpuTicks(c)
			}
			return n
		}
		cpu0 := cpu()
		var profiled func()
		if profileDir != "" && w.target == "" {
			profiled = profile(metrics, filepath.Join(profileDir, w.name), o.duration)
		}
		l, err := runWrk(ctx, url, script, o.connections, o.duration)
		if profiled != nil {
			profiled()
		}
		if err != nil {
			return err
		}
		if l.Errors > 0 {
			fmt.Fprintf(os.Stderr, "%s: %d errors; the first: %s\n", w.name, l.Errors, l.ErrorSample)
		}
		cpu1 := cpu()
		sum1, count1 := scrape(metrics)
		r := result{workload: w, load: l, ratio: -1, stmtsPerReq: -1, cpuMsPerReq: -1}
		if w.name == "ceiling" {
			ceilingRPS = l.RPS
		} else if ceilingRPS > 0 {
			r.ratio = l.RPS / ceilingRPS
		}
		if l.Requests > 0 {
			r.cpuMsPerReq = float64(cpu1-cpu0) * 1000 / clockTicks / float64(l.Requests)
		}
		if w.target == "" { // the minimal handlers run in this process
			r.rss = peakRSS(srv.Process.Pid)
			if count1 > count0 {
				r.stmtsPerReq = (sum1 - sum0) / (count1 - count0)
			}
		}
		results = append(results, r)
	}
	var rss int64 // each workload restarts the high-water mark, so the run's is the highest of theirs
	for _, r := range results {
		rss = max(rss, r.rss)
	}
	var export string
	var exportErr error
	if o.runs("X1") {
		// M2's logins have evicted the first token (sessions per user are
		// bounded): X1 logs in again.
		if export, exportErr = exportAll(api, password, worker.Process.Pid, o.users); exportErr != nil {
			export = "failed: " + exportErr.Error()
		}
	}
	var jobs, floor string
	if o.runs("J1") {
		jobs = jobThroughput(ctx)
	}
	if o.runs("F1") {
		floor = executorFloor(ctx)
	}
	if err := report(o, results, seedTime, rss, jobs, floor, export); err != nil {
		return err
	}
	return exportErr // after the report: a failed export does not lose the run's figures
}

// runs reports whether the run includes the workload or figure named (a
// workload's floor goes with it): every one unless -only names some.
func (o options) runs(name string) bool {
	return o.only == "" || strings.Contains(","+o.only+",", ","+name+",")
}

func step(s string) { fmt.Fprintf(os.Stderr, "== %s\n", s) }

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startRedis(dir string) (string, func(), error) {
	addr := freeAddr()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--maxmemory", "1gb", "--maxmemory-policy", "volatile-ttl", "--dir", dir)
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("redis-server: %w", err)
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "redis://" + addr + "/0", stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("redis-server did not start")
}

func waitReady(url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("usergraph serve did not become ready")
}

func post(url, token, body string) (map[string]any, error) {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil || out["errors"] != nil {
		return out, fmt.Errorf("%s: %s", body, raw)
	}
	return out, nil
}

func gql(query string, vars map[string]any) string {
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return string(b)
}

func login(api, password string) (string, error) {
	out, err := post(api+"/graphql", "", gql(`mutation($p: String!) { login(input: {identifier: "bench-admin", password: $p}) { token } }`, map[string]any{"p": password}))
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	return out["data"].(map[string]any)["login"].(map[string]any)["token"].(string), nil
}

const (
	q1 = `query Q1 { users(first: 50) { edges { cursor node { id email username } } pageInfo { hasNextPage endCursor } } }`
	q2 = `query Q2 { users(first: 50) { nodes { id email username roles { name } groups(first: 5) { nodes { name } } } } }`
	q3 = `query Q3 { users(first: 50) { nodes { id email username roles { name } groups(first: 5) { nodes { name memberCount } } } } }`
)

// workloads prepares the bodies: random user ids for Q4, a cursor at row
// 900,000 (or 90% of the table) for Q5, the APQ registration for Q7.
func workloads(ctx context.Context, pgURL, api, token string) ([]workload, error) {
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	var total int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&total); err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, "SELECT id FROM users TABLESAMPLE SYSTEM (1) LIMIT 1000")
	if err != nil {
		return nil, err
	}
	var q4 []string
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		q4 = append(q4, gql(`query Q4($id: ID!) { node(id: $id) { id ... on User { email username } } }`,
			map[string]any{"id": model.GlobalID(model.KindUser, id)}))
	}
	rows.Close()
	var at time.Time
	var deepID uuid.UUID
	if err := conn.QueryRow(ctx, "SELECT created_at, id FROM users WHERE deleted_at IS NULL ORDER BY created_at, id OFFSET $1 LIMIT 1",
		total*9/10).Scan(&at, &deepID); err != nil {
		return nil, err
	}
	q5 := strings.Replace(q1, "users(first: 50)", fmt.Sprintf("users(first: 50, after: %q)", db.UserCursorAt(at, deepID)), 1)
	q5 = strings.Replace(q5, "query Q1", "query Q5", 1)
	// A name with digits, as an admin types it; then the terms PostgreSQL
	// misjudges by their length: digits only (rare, guessed common) and a
	// common name (guessed rare).
	q6 := `query Q6 { users(first: 50, filter: {search: "hopper12"}) { nodes { id email username } } }`
	q6d := strings.NewReplacer("Q6", "Q6d", "hopper12", "4242").Replace(q6)
	q6c := strings.NewReplacer("Q6", "Q6c", "hopper12", "hopper").Replace(q6)
	hash := cache.QueryHash(q2)
	apq := func(withQuery bool) string {
		m := map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}}
		if withQuery {
			m["query"] = q2
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	if _, err := post(api+"/graphql", token, apq(true)); err != nil {
		return nil, fmt.Errorf("registering Q7: %w", err)
	}
	return []workload{
		{name: "Q1", what: "users(first: 50) with cursors and pageInfo", bodies: []string{gql(q1, nil)}},
		{name: "Q2", what: "Q1 plus roles and groups(first: 5)", bodies: []string{gql(q2, nil)}},
		{name: "Q3", what: "Q2 plus each group's memberCount", bodies: []string{gql(q3, nil)}},
		{name: "Q4", what: "node(id:) of 1,000 random users", bodies: q4},
		{name: "Q5", what: "a page at 90% of the list", bodies: []string{gql(q5, nil)}},
		{name: "Q6", what: `users(filter: {search: "hopper12"}): trigram substring search`, bodies: []string{gql(q6, nil)}},
		{name: "Q6d", what: `Q6 with "4242": rare, guessed common`, bodies: []string{gql(q6d, nil)}},
		{name: "Q6c", what: `Q6 with "hopper": common, guessed rare`, bodies: []string{gql(q6c, nil)}},
		{name: "Q7", what: "Q2 as a persisted query, response cache warm", bodies: []string{apq(false)}, cached: true},
		{name: "Q7gz", what: "Q7 for a client that accepts gzip, as browsers do", bodies: []string{apq(false)}, cached: true, gzip: true},
		{name: "M1", what: "createUser (welcome email job enqueued)",
			bodies: []string{gql(`mutation { createUser(input: {email: "bench%d@example.net", username: "bench%d"}) { user { id } } }`, nil)}, unique: true},
		{name: "M2", what: "login (argon2id-bound)",
			bodies: []string{gql(`mutation { login(input: {identifier: "bench-admin", password: "bench-admin-passphrase-2026"}) { token } }`, nil)}},
	}, nil
}

// scrape reads the statements-per-request histogram's sum and count.
func scrape(addr string) (sum, count float64) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "usergraph_sql_statements_per_request_sum "); ok {
			sum, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(line, "usergraph_sql_statements_per_request_count "); ok {
			count, _ = strconv.ParseFloat(v, 64)
		}
	}
	return sum, count
}

// ceilingBody is the ceiling's fixed 200 bytes of JSON.
var ceilingBody = []byte(`{"data":{"ceiling":"` + strings.Repeat("x", 200-len(`{"data":{"ceiling":""}}`)) + `"}}`)

// answerTo sends the named workload's request once, as its load will (with
// Accept-Encoding: gzip when it asks for gzip), and returns the answer's
// bytes as they came and its Content-Encoding.
func answerTo(url, token string, loads []workload, name string) ([]byte, string, error) {
	for _, w := range loads {
		if w.name != name {
			continue
		}
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(w.bodies[0]))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		// Set by hand either way: the client then leaves the body as it came.
		accept := "identity"
		if w.gzip {
			accept = "gzip"
		}
		req.Header.Set("Accept-Encoding", accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, "", fmt.Errorf("%s's answer: %w", name, err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, "", fmt.Errorf("%s's answer: status %d, %v", name, resp.StatusCode, err)
		}
		return raw, resp.Header.Get("Content-Encoding"), nil
	}
	return nil, "", fmt.Errorf("no %s workload", name)
}

// gunzip decodes a gzipped body.
func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// startCeiling serves a fixed body: with the 200-byte ceilingBody, the most
// this machine's HTTP stack answers, measured by the same wrk run. A
// non-empty encoding is sent as the body's Content-Encoding.
func startCeiling(body []byte, encoding string) (string, func(), error) {
	return startFloor(body, encoding, nil)
}

// startRoundTripFloor starts Q7-roundtrip or Q7gz-roundtrip: Q7's or
// Q7gz's floor when every request makes the one Redis read that keeps a
// revoked session or a changed answer from being served anywhere a moment
// later, as it did before memory copies. The minimal
// handler reads, as the server does, a session entry, the generation and a
// digest in one MGET through the server's pipelined client, then answers
// body with encoding, as startCeiling does.
func startRoundTripFloor(ctx context.Context, redisURL string, body []byte, encoding string) (string, func(), error) {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return "", nil, err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	session := strings.Repeat("s", 320) // a cached session entry with a few permissions
	if err := rdb.MSet(ctx, "floor:session", session, "floor:generation", "7", "floor:digest", strings.Repeat("d", 32)).Err(); err != nil {
		return "", nil, err
	}
	reads, err := cache.NewPipelinedReads(redisURL, 100*time.Millisecond)
	if err != nil {
		return "", nil, err
	}
	url, stop, err := startFloor(body, encoding, func(ctx context.Context) error {
		vals, err := reads.MGet(ctx, "floor:session", "floor:generation", "floor:digest").Result()
		if err == nil && vals[0] != session {
			err = errors.New("floor: the session entry read wrong")
		}
		return err
	})
	if err != nil {
		_ = reads.Close()
		return "", nil, err
	}
	return url, func() { stop(); _ = reads.Close() }, nil
}

// startFloor is startCeiling with before, when not nil, run on each
// request before it is answered (a 502 when it fails).
func startFloor(body []byte, encoding string, before func(ctx context.Context) error) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if before != nil {
			if err := before(r.Context()); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body))) // as the server declares it
		if encoding != "" {
			w.Header().Set("Content-Encoding", encoding)
		}
		_, _ = w.Write(body)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String() + "/", func() { _ = srv.Close() }, nil
}

// vacuum runs VACUUM (ANALYZE) on the tables the seed loaded.
func vacuum(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "VACUUM (ANALYZE) users, user_roles, group_members, groups, roles"); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return nil
}

// jobThroughput runs the River benchmark for the two ways the product
// enqueues welcome emails and returns their jobs/s figures.
func jobThroughput(ctx context.Context) string {
	step("J1: River enqueue-and-work throughput (go test -bench JobThroughput)")
	out, err := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "JobThroughput/enqueue=.*/email_concurrency=50$",
		"-benchtime", "20000x", "./jobs/").CombinedOutput()
	if err != nil {
		return "failed: " + err.Error()
	}
	var figures []string
	for _, v := range benchValues(out, "jobs/s") {
		switch {
		case strings.Contains(v.name, "enqueue=bulk"):
			figures = append(figures, fmt.Sprintf("%.0f jobs/s enqueued in bulk (an import with sendWelcome)", v.value))
		case strings.Contains(v.name, "enqueue=each"):
			figures = append(figures, fmt.Sprintf("%.0f jobs/s enqueued one by one (createUser)", v.value))
		}
	}
	if len(figures) == 0 {
		return "no figure"
	}
	return strings.Join(figures, "; ") + ", 50 email workers, end to end"
}

// executorFloor runs the benchmark of gqlgen executing Q1 and Q2 with their
// pages already in memory (no SQL, no extensions), with and without the
// stack reserve usergraph serve keeps, and returns their CPU per request:
// the least either can cost while the generated executor answers it.
func executorFloor(ctx context.Context) string {
	step("F1: gqlgen's execution of Q1 and Q2 alone (go test -bench ExecutorFloor)")
	out, err := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "ExecutorFloor/.*/(interceptors=0|reserved)$",
		"-benchtime", "3000x", "-count", "3", "./graph/").CombinedOutput()
	if err != nil {
		return "F1 failed: " + err.Error()
	}
	variants := []string{"Q1/reserved", "Q2/reserved", "Q1/interceptors=0", "Q2/interceptors=0"}
	figures := map[string][]string{} // CPU-ms per run, by variant
	for _, v := range benchValues(out, "cpu-µs/op") {
		for _, variant := range variants {
			if strings.Contains(v.name, "/"+variant+"-") || strings.HasSuffix(v.name, "/"+variant) {
				figures[variant] = append(figures[variant], fmt.Sprintf("%.2f", v.value/1000))
			}
		}
	}
	if len(figures) != len(variants) {
		return "F1: no figure"
	}
	return fmt.Sprintf("F1 (the executor's floor): gqlgen executing Q1 and Q2 with their pages already in memory, no SQL and no extensions, "+
		"costs %s CPU-ms per request for Q1 and %s for Q2 with the server's stack reserve, %s and %s without (three runs each).",
		strings.Join(figures[variants[0]], " / "), strings.Join(figures[variants[1]], " / "),
		strings.Join(figures[variants[2]], " / "), strings.Join(figures[variants[3]], " / "))
}

// benchValue is one figure of a go test -bench result line.
type benchValue struct {
	name  string // the benchmark's, as printed (with its -GOMAXPROCS suffix)
	value float64
}

// benchValues returns the figures reported in unit, one per result line
// that has it, in the order printed.
func benchValues(out []byte, unit string) []benchValue {
	var vs []benchValue
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		for i := 1; i < len(f); i++ {
			if f[i] != unit {
				continue
			}
			if v, err := strconv.ParseFloat(f[i-1], 64); err == nil {
				vs = append(vs, benchValue{name: f[0], value: v})
			}
		}
	}
	return vs
}

// exportAll is X1: requestUserExport of every user as CSV, worked by the
// worker process, whose peak RSS it reports with the time from request to
// finished file.
func exportAll(api, password string, workerPID, users int) (string, error) {
	step(fmt.Sprintf("X1: exporting all %d users to CSV (usergraph worker)", users))
	token, err := login(api, password)
	if err != nil {
		return "", fmt.Errorf("X1: %w", err)
	}
	resetPeakRSS(workerPID)
	start := time.Now()
	out, err := post(api+"/graphql", token, gql(`mutation { requestUserExport(input: {format: CSV}) { job { id } } }`, nil))
	if err != nil {
		return "", fmt.Errorf("X1: %w", err)
	}
	id := out["data"].(map[string]any)["requestUserExport"].(map[string]any)["job"].(map[string]any)["id"].(string)
	for time.Since(start) < 10*time.Minute {
		time.Sleep(250 * time.Millisecond)
		out, err := post(api+"/graphql", token, gql(`query($id: ID!) { job(id: $id) { state lastError export { rows bytes } } }`, map[string]any{"id": id}))
		if err != nil {
			return "", fmt.Errorf("X1: %w", err)
		}
		job := out["data"].(map[string]any)["job"].(map[string]any)
		switch job["state"] {
		case "COMPLETED":
			took := time.Since(start)
			e := job["export"].(map[string]any)
			return fmt.Sprintf("%.0f rows, %.0f MiB of CSV in %.1f s; the worker's peak RSS %.0f MiB", e["rows"], e["bytes"].(float64)/(1<<20),
				took.Seconds(), float64(peakRSS(workerPID))/(1<<20)), nil
		case "CANCELLED", "DISCARDED":
			return "", fmt.Errorf("X1: the export ended %v: %v", job["state"], job["lastError"])
		}
		if job["lastError"] != nil {
			return "", fmt.Errorf("X1: the export failed an attempt: %v", job["lastError"])
		}
	}
	return "", fmt.Errorf("X1: the export did not finish in 10 minutes")
}

func report(o options, results []result, seed time.Duration, rss int64, jobs, floor, export string) error {
	host, _ := os.Hostname()
	var b strings.Builder
	fmt.Fprintf(&b, "# Usergraph benchmark, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Machine: %s, %d CPUs. %d users, seeded in %.1f s. wrk: 2 threads, %d connections, %s warm-up, %s measured per workload.\n\n",
		host, runtime.NumCPU(), o.users, seed.Seconds(), o.connections, o.warmup, o.duration)
	b.WriteString("| Workload | What | req/s | vs ceiling | p50 | p99 | SQL stmts/req | CPU ms/req (server + PostgreSQL; a minimal handler alone) | server peak RSS | errors |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		rss := "—"
		if r.rss > 0 {
			rss = fmt.Sprintf("%.0f MiB", float64(r.rss)/(1<<20))
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %d |\n", r.name, r.what, r.RPS, pct(r.ratio), r.P50.Round(10*time.Microsecond),
			r.P99.Round(10*time.Microsecond), num(r.stmtsPerReq), num(r.cpuMsPerReq), rss, r.Errors)
	}
	b.WriteString("\n")
	if rss > 0 {
		fmt.Fprintf(&b, "Server peak RSS over the whole run: %.0f MiB. ", float64(rss)/(1<<20))
	}
	if jobs != "" {
		fmt.Fprintf(&b, "J1: %s.", jobs)
	}
	b.WriteString("\n")
	if export != "" {
		fmt.Fprintf(&b, "X1 (export every user to CSV): %s.\n", export)
	}
	if floor != "" {
		fmt.Fprintf(&b, "%s\n", floor)
	}
	fmt.Print(b.String())
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	name := filepath.Join(o.out, time.Now().UTC().Format("20060102-150405")+".md")
	if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "written to", name)
	return nil
}

// profile fetches the server's CPU profile and its allocations over the
// workload's measured time (pprof's delta profiles), writing name.cpu.pprof
// and name.allocs.pprof; the returned func waits for both. Read them with
// `go tool pprof -top bench/results/profiles-*/Q2.cpu.pprof`.
func profile(metricsAddr, name string, d time.Duration) func() {
	secs := strconv.Itoa(max(1, int(d.Seconds())-1))
	done := make(chan struct{}, 2)
	for _, p := range []struct{ path, suffix string }{
		{"/debug/pprof/profile?seconds=" + secs, ".cpu.pprof"},
		{"/debug/pprof/allocs?seconds=" + secs, ".allocs.pprof"},
	} {
		go func() {
			defer func() { done <- struct{}{} }()
			resp, err := http.Get("http://" + metricsAddr + p.path)
			if err != nil {
				fmt.Fprintln(os.Stderr, "profile:", err)
				return
			}
			defer resp.Body.Close()
			f, err := os.Create(name + p.suffix)
			if err != nil {
				fmt.Fprintln(os.Stderr, "profile:", err)
				return
			}
			defer f.Close()
			_, _ = io.Copy(f, resp.Body)
		}()
	}
	return func() { <-done; <-done }
}

func pct(r float64) string {
	if r < 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f%%", r*100)
}

func num(v float64) string {
	if v < 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", v)
}
