// Package scaletest runs Usergraph the way operators run it when one
// machine is not enough: several stateless instances behind nginx and
// HAProxy (configured from deploy/), PostgreSQL with a streaming replica
// and PgBouncer, Redis. Every server is real and on loopback. `make
// scale-test` runs it (and CI, through .ci/run); plain `go test ./...`
// skips it, because it needs nginx, HAProxy and PgBouncer and takes minutes.
package scaletest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/usergraph/usergraph/embeddedpg"
)

const password = "scale-test-passphrase-7"

func TestMain(m *testing.M) {
	if os.Getenv("USERGRAPH_SCALE_TEST") == "" {
		fmt.Println("scaletest: skipped; `make scale-test` runs it (USERGRAPH_SCALE_TEST=1)")
		os.Exit(0)
	}
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	repoRoot = filepath.Dir(wd)
	dir, err := os.MkdirTemp("", "usergraph-scale-bin-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "usergraph")
	build := exec.Command("go", "build", "-o", binary, "../cmd/usergraph")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building usergraph:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is PostgreSQL, Redis and a few instances with two accounts:
// admin (used by the load) and member (whose sessions the tests end).
type cluster struct {
	dir        string
	pg         *postgres
	redisURL   string
	instances  []*instance
	adminToken string
	adminID    string
	targetID   string // a user the load and the tests rename
}

// createAdmin makes an administrator with `usergraph admin create`.
func createAdmin(t testing.TB, dbURL, email, username string) {
	t.Helper()
	cmd := exec.Command(binary, "admin", "create", "--email", email, "--username", username)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "ADMIN_PASSWORD="+password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("usergraph admin create: %v\n%s", err, out)
	}
}

// newCluster starts n instances on apiURL (the primary when ""), each with
// env added.
func newCluster(t *testing.T, n int, apiURL func(*postgres) string, env ...string) *cluster {
	t.Helper()
	c := &cluster{dir: sharedDir(t)}
	c.pg = startPostgres(t, c.dir)
	c.redisURL = startRedis(t).URL
	createAdmin(t, c.pg.srv.URL(), "admin@scale.test", "admin")
	createAdmin(t, c.pg.srv.URL(), "member@scale.test", "member")
	dbURL := c.pg.srv.URL()
	if apiURL != nil {
		dbURL = apiURL(c.pg)
	}
	base := instanceEnv(dbURL, c.redisURL, filepath.Join(c.dir, "data"), env...)
	for i := range n {
		c.instances = append(c.instances, startInstance(t, fmt.Sprintf("app%d", i+1), freePort(t), base))
	}
	first := c.instances[0].url()
	c.adminToken = login(t, first, "admin")
	c.adminID = mustPost(t, first, c.adminToken, `{ me { id } }`, nil).str("me.id")
	c.targetID = mustPost(t, first, c.adminToken, `mutation { createUser(input: {email: "target@scale.test", username: "target"}) { user { id } } }`, nil).str("createUser.user.id")
	return c
}

func (c *cluster) newLoad(base, prefix string) *load {
	return &load{base: base, adminToken: c.adminToken, loginUser: "member", password: password, targetUser: c.targetID,
		workers: 6, pause: 5 * time.Millisecond, emailPrefix: prefix}
}

func TestBehindALoadBalancer(t *testing.T) {
	c := newCluster(t, 3, nil)
	for _, lb := range []struct {
		name  string
		start func(testing.TB, string, []*instance) *balancer
	}{{"nginx", startNginx}, {"haproxy", startHAProxy}} {
		t.Run(lb.name, func(t *testing.T) {
			b := lb.start(t, c.dir, c.instances)
			t.Run("a session works on every instance and logout through one ends it on all", func(t *testing.T) {
				sessionsAcrossInstances(t, c, b)
			})
			t.Run("a mutation through one instance invalidates the cached response on all", func(t *testing.T) {
				cacheAcrossInstances(t, c, b)
			})
			t.Run("five rolling restarts under load fail no request", func(t *testing.T) {
				rollingRestarts(t, c, b)
			})
			t.Run("SIGKILL of an instance fails only the requests in flight and leaves no half-written data", func(t *testing.T) {
				killOne(t, c, b)
			})
			if err := b.proc.stop(t, 10*time.Second); err != nil {
				t.Logf("%s exited with %v", b.name, err)
			}
		})
	}
}

const meQuery = `{ me { id } }`

func sessionsAcrossInstances(t *testing.T, c *cluster, b *balancer) {
	token := login(t, b.url, "member")
	var memberID string
	for _, i := range c.instances {
		r := mustPost(t, i.url(), token, meQuery, nil)
		if memberID == "" {
			memberID = r.str("me.id")
		}
		if got := r.str("me.id"); got == "" || got != memberID {
			t.Fatalf("%s: me = %q, want the member %q", i.name, got, memberID)
		}
	}
	mustPost(t, c.instances[1].url(), token, `mutation { logout { ok } }`, nil)
	for _, i := range c.instances {
		if r := post(i.url(), token, meQuery, nil); r.code() != "UNAUTHENTICATED" {
			t.Errorf("%s after logout on app2: %s, want UNAUTHENTICATED", i.name, r)
		}
	}

	// Revocation of every session at once (logoutEverywhere) through app3.
	tokens := []string{login(t, c.instances[0].url(), "member"), login(t, c.instances[1].url(), "member")}
	for _, tok := range tokens {
		for _, i := range c.instances { // warm every instance's view of both sessions
			mustPost(t, i.url(), tok, meQuery, nil)
		}
	}
	mustPost(t, c.instances[2].url(), tokens[0], `mutation { logoutEverywhere { ok } }`, nil)
	for _, tok := range tokens {
		for _, i := range c.instances {
			if r := post(i.url(), tok, meQuery, nil); r.code() != "UNAUTHENTICATED" {
				t.Errorf("%s after logoutEverywhere on app3: %s, want UNAUTHENTICATED", i.name, r)
			}
		}
	}
}

func cacheAcrossInstances(t *testing.T, c *cluster, b *balancer) {
	q := `query($id: ID!) { user(id: $id) { id displayName } }`
	vars := map[string]any{"id": c.targetID}
	for range 2 { // the second round is answered from the cache
		for _, i := range c.instances {
			mustPost(t, i.url(), c.adminToken, q, vars)
		}
	}
	name := fmt.Sprintf("renamed through %s at %d", b.name, time.Now().UnixNano())
	mustPost(t, c.instances[0].url(), c.adminToken, `mutation($i: UpdateUserInput!) { updateUser(input: $i) { user { id } } }`,
		map[string]any{"i": map[string]any{"id": c.targetID, "displayName": name}})
	for _, i := range c.instances {
		if got := mustPost(t, i.url(), c.adminToken, q, vars).str("user.displayName"); got != name {
			t.Errorf("%s still answers %q after the rename on app1, want %q", i.name, got, name)
		}
	}
}

func rollingRestarts(t *testing.T, c *cluster, b *balancer) {
	l := c.newLoad(b.url, "roll-"+b.name)
	l.start()
	time.Sleep(2 * time.Second) // steady load before the first restart
	for r := range 5 {
		i := c.instances[r%len(c.instances)]
		if err := i.proc.stop(t, 30*time.Second); err != nil {
			l.stop()
			t.Fatalf("%s did not exit cleanly on SIGTERM: %v\n%s", i.name, err, tail(i.proc.logs(), 30))
		}
		i.start(t)
		// Long enough for the balancer to take the instance back (HAProxy:
		// two good checks 500 ms apart; nginx: fail_timeout 2s).
		time.Sleep(2500 * time.Millisecond)
	}
	outcomes := l.stop()
	t.Log(summary(outcomes))
	if fs := failures(outcomes); len(fs) > 0 {
		t.Fatalf("%d of %d requests failed during rolling restarts:\n%s", len(fs), len(outcomes), describe(fs, 20))
	}
	checkLoadRan(t, outcomes)
	checkNoHalfWrites(t, c, l.emailPrefix, outcomes)
}

func killOne(t *testing.T, c *cluster, b *balancer) {
	l := c.newLoad(b.url, "kill-"+b.name)
	l.start()
	time.Sleep(2 * time.Second)
	victim := c.instances[1]
	killedAt := time.Now()
	victim.proc.kill()
	time.Sleep(4 * time.Second) // load keeps running on the survivors
	outcomes := l.stop()
	victim.start(t)
	t.Log(summary(outcomes))
	fs := failures(outcomes)
	// A request in flight at the kill may fail; one sent after it must not
	// (the balancer's connection to the dead instance is refused and the
	// request goes to another). 100 ms covers requests sent in the same
	// instant, before the kernel has closed the dead process's sockets.
	var late []outcome
	for _, f := range fs {
		if f.start.After(killedAt.Add(100 * time.Millisecond)) {
			late = append(late, f)
		}
	}
	if len(late) > 0 {
		t.Errorf("%d requests sent after the kill failed:\n%s", len(late), describe(late, 20))
	}
	if len(fs) > l.workers {
		t.Errorf("%d requests failed, more than the %d that can be in flight at once:\n%s", len(fs), l.workers, describe(fs, 20))
	}
	t.Logf("%d requests in flight at the kill failed", len(fs))
	checkLoadRan(t, outcomes)
	checkNoHalfWrites(t, c, l.emailPrefix, outcomes)
}

// checkLoadRan guards against a vacuous pass: every kind of request ran.
func checkLoadRan(t *testing.T, outcomes []outcome) {
	t.Helper()
	seen := map[string]int{}
	for _, o := range outcomes {
		if o.res.ok() {
			seen[o.op]++
		}
	}
	for _, op := range operations {
		if seen[op.name] < 5 {
			t.Errorf("only %d successful %s requests: the load did not run", seen[op.name], op.name)
		}
	}
}

// checkNoHalfWrites checks what a createUser commits in one transaction:
// every user the load created has its audit event and its welcome job, and
// every creation the client saw succeed is there.
func checkNoHalfWrites(t *testing.T, c *cluster, prefix string, outcomes []outcome) {
	t.Helper()
	var succeeded []string
	for _, o := range outcomes {
		if o.op == "createUser" && o.res.ok() {
			succeeded = append(succeeded, o.email)
		}
	}
	var users, found, partial int
	query(t, c.pg.srv.URL(), `SELECT count(*),
			count(*) FILTER (WHERE u.email = ANY($2)),
			count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM audit_events a WHERE a.action = 'user.create' AND a.target_id = u.id)
			                    OR NOT EXISTS (SELECT 1 FROM river_job j WHERE j.kind = 'welcome_email' AND j.args->>'user_id' = u.id::text))
		FROM users u WHERE u.email LIKE $1`, []any{prefix + "-%", succeeded}, &users, &found, &partial)
	if found != len(succeeded) {
		t.Errorf("%d creations answered success but %d of those users exist", len(succeeded), found)
	}
	if partial != 0 {
		t.Errorf("%d of %d created users lack their audit event or welcome job", partial, users)
	}
	if users == 0 {
		t.Error("the load created no users")
	}
}

func TestPgBouncerTransactionMode(t *testing.T) {
	var bouncerAdmin string
	c := newCluster(t, 1, func(pg *postgres) string {
		url, admin := startPgBouncer(t, sharedDir(t), pg)
		bouncerAdmin = admin
		return url
	}, "JOB_POLL_ONLY=true")
	api := c.instances[0].url()
	l := c.newLoad(api, "bouncer")
	l.start()
	time.Sleep(4 * time.Second)
	outcomes := l.stop()
	t.Log(summary(outcomes))
	if fs := failures(outcomes); len(fs) > 0 {
		t.Fatalf("%d of %d requests through PgBouncer failed:\n%s", len(fs), len(outcomes), describe(fs, 20))
	}
	checkLoadRan(t, outcomes)
	checkNoHalfWrites(t, c, "bouncer", outcomes)

	// Poll-only workers work the welcome jobs through PgBouncer.
	waitFor(t, "welcome jobs to complete through PgBouncer", 60*time.Second, func() bool {
		var pending int
		query(t, c.pg.srv.URL(), `SELECT count(*) FROM river_job WHERE kind = 'welcome_email' AND state <> 'completed'`, nil, &pending)
		return pending == 0
	})

	// And the instance really is PgBouncer's client: its pool's connections
	// are listed there (the admin console's own is for database pgbouncer).
	conn := connect(t, bouncerAdmin)
	rows, err := conn.Query(context.Background(), "SHOW CLIENTS")
	if err != nil {
		t.Fatal(err)
	}
	clients := 0
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		for k, f := range rows.FieldDescriptions() {
			if f.Name == "database" && fmt.Sprint(vals[k]) == "usergraph" {
				clients++
			}
		}
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if clients == 0 {
		t.Error("PgBouncer lists no client connection to database usergraph")
	}
	t.Logf("PgBouncer lists %d client connections from the instance", clients)
}

func TestReadReplicas(t *testing.T) {
	var replica *embeddedpg.Server
	c := newCluster(t, 1, func(pg *postgres) string {
		replica = startReplica(t, sharedDir(t), pg)
		return pg.srv.URL()
	}, "DATABASE_REPLICA_MAX_LAG=3s", "READ_YOUR_WRITES_WINDOW=3s")
	// DATABASE_REPLICA_URLS reaches only the instance started below: the
	// cluster's own instance above reads the primary.
	replicaURL := replica.URL()
	dir := sharedDir(t)
	i := startInstance(t, "replicated", freePort(t), instanceEnv(c.pg.srv.URL(), c.redisURL, dir,
		"DATABASE_REPLICA_URLS="+replicaURL, "DATABASE_REPLICA_MAX_LAG=3s", "READ_YOUR_WRITES_WINDOW=3s"))
	api := i.url()
	const writer, reader = "198.51.100.1", "198.51.100.2"
	writerToken := loginFrom(t, api, writer, "admin")
	readerToken := loginFrom(t, api, reader, "member")
	events := `query($t: ID!) { auditEvents(first: 50, filter: {action: "user.update", target: $t}) { edges { node { id } } } }`
	vars := map[string]any{"t": c.targetID}
	count := func(ip, token string) int {
		r := postFrom(api, token, ip, events, vars)
		if !r.ok() {
			t.Fatalf("auditEvents from %s: %s", ip, r)
		}
		edges, _ := r.field("auditEvents.edges").([]any)
		return len(edges)
	}
	time.Sleep(3200 * time.Millisecond) // the logins' read-your-writes windows pass

	// A fresh replayed transaction, then replay paused: the replica now
	// shows the past, and its measured lag grows from zero.
	query(t, c.pg.srv.URL(), `SELECT 1 FROM (SELECT txid_current()) x`, nil, new(int))
	syncReplica(t, c.pg.srv.URL(), replicaURL)
	query(t, replicaURL, `SELECT 1 FROM (SELECT pg_wal_replay_pause()) x`, nil, new(int))
	before := count(reader, readerToken)

	r := postFrom(api, writerToken, writer, `mutation($i: UpdateUserInput!) { updateUser(input: $i) { user { id } } }`,
		map[string]any{"i": map[string]any{"id": c.targetID, "displayName": "written while the replica is paused"}})
	if !r.ok() {
		t.Fatalf("a write with the replica paused: %s (writes must go to the primary)", r)
	}
	if got := count(writer, writerToken); got != before+1 {
		t.Errorf("the writer reads %d events right after its write, want %d: its reads must stay on the primary", got, before+1)
	}
	if got := count(reader, readerToken); got != before {
		t.Errorf("another client reads %d events, want %d from the paused replica: reads are not going to the replica", got, before)
	}

	// Past DATABASE_REPLICA_MAX_LAG the replica is taken out of reads.
	waitFor(t, "the lagging replica to be taken out of reads", 15*time.Second, func() bool {
		return count(reader, readerToken) == before+1
	})
	var paused bool
	query(t, replicaURL, `SELECT pg_is_wal_replay_paused()`, nil, &paused)
	if !paused {
		t.Fatal("replay resumed by itself: the fallback was not what the test saw")
	}
	query(t, replicaURL, `SELECT 1 FROM (SELECT pg_wal_replay_resume()) x`, nil, new(int))
	syncReplica(t, c.pg.srv.URL(), replicaURL)

	// Replica down: every read still succeeds, from the primary.
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := replica.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	for n := range 30 {
		if got := count(reader, readerToken); got != before+1 {
			t.Fatalf("read %d with the replica down: %d events, want %d", n, got, before+1)
		}
	}
}
