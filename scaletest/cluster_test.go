package scaletest

import (
	"bufio"
	"context"
	"fmt"
	"net"
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

	"github.com/jackc/pgx/v5"

	"github.com/usergraph/usergraph/embeddedpg"
	"github.com/usergraph/usergraph/redistest"
)

// The cluster is made of real servers on loopback: PostgreSQL (and a
// streaming replica, and PgBouncer, where a test asks), Redis, several
// `usergraph serve` processes built from this tree, and nginx or HAProxy
// configured from deploy/.

// binary is the usergraph binary built by TestMain.
var binary string

// repoRoot is the repository's top directory (deploy/ lives there).
var repoRoot string

// freePort returns a loopback port nobody listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// sharedDir is a temporary directory other users (postgres, nginx's
// workers) can enter.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "usergraph-scale-*")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// process is a child process whose output is kept for failure messages.
type process struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
	err  error
}

// startProcess starts bin; the process is killed, if still running, when
// owner ends (a test that outlives the subtest that restarted it).
func startProcess(t, owner testing.TB, name string, env []string, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	_ = w.Close()
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			if p.out.Len() < 4<<20 {
				p.out.WriteString(sc.Text() + "\n")
			}
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	owner.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *process) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits for the process to exit, returning its error.
func (p *process) stop(t testing.TB, within time.Duration) error {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		t.Fatalf("%s did not exit within %s of SIGTERM:\n%s", p.name, within, tail(p.logs(), 30))
		return nil
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond until it holds or the deadline passes (polling a
// server that is starting, not pacing the test).
func waitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// postgres is a primary PostgreSQL with the schema migrated.
type postgres struct {
	srv     *embeddedpg.Server
	dataDir string
}

func startPostgres(t testing.TB, dir string) *postgres {
	t.Helper()
	dataDir := filepath.Join(dir, "primary")
	srv, err := embeddedpg.Start(context.Background(), embeddedpg.Config{
		DataDir: dataDir,
		// Replication is on by default in PostgreSQL 15 (wal_level=replica,
		// max_wal_senders=10); the trust rules initdb writes admit
		// replication connections on loopback.
		Settings: map[string]string{"max_connections": "300", "wal_keep_size": "256MB"},
	})
	if err != nil {
		t.Fatalf("starting PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
	cmd := exec.Command(binary, "migrate", "up")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+srv.URL())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("usergraph migrate up: %v\n%s", err, out)
	}
	return &postgres{srv: srv, dataDir: dataDir}
}

// query runs one statement on url and scans its single row.
func query(t testing.TB, url, sql string, args []any, dest ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, sql, args...).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// startReplica makes a streaming replica of the primary with pg_basebackup
// (as the postgres user, who owns the data) and starts it.
func startReplica(t testing.TB, dir string, primary *postgres) *embeddedpg.Server {
	t.Helper()
	bin, err := embeddedpg.LookPath("pg_basebackup")
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "replica")
	args := []string{"-h", "127.0.0.1", "-p", fmt.Sprint(primary.srv.Port()), "-U", "postgres", "-D", dataDir,
		"-R", "-X", "stream", "--checkpoint=fast", "--no-sync"}
	var cmd *exec.Cmd
	if os.Getuid() == 0 {
		// The replica's files must belong to the user its server runs as.
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("chown", "postgres:postgres", dataDir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v\n%s", err, out)
		}
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	srv, err := embeddedpg.Start(context.Background(), embeddedpg.Config{DataDir: dataDir,
		Settings: map[string]string{"max_connections": "300", "hot_standby": "on"}})
	if err != nil {
		t.Fatalf("starting the replica: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
	var inRecovery bool
	query(t, srv.URL(), "SELECT pg_is_in_recovery()", nil, &inRecovery)
	if !inRecovery {
		t.Fatal("the replica is not in recovery: pg_basebackup -R did not make a standby")
	}
	return srv
}

// program finds a server program from Debian's packages: on $PATH, or in
// /usr/sbin, which is not on every user's $PATH (make scale-test installs
// them).
func program(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := "/usr/sbin/" + name
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found: run make scale-test, which installs it", name)
	}
	return p
}

// instance is one `usergraph serve` on a fixed port, restartable.
type instance struct {
	owner testing.TB // the test that started it first: restarts live as long
	name  string
	port  int
	env   []string
	proc  *process
}

func (i *instance) url() string { return fmt.Sprintf("http://127.0.0.1:%d", i.port) }

// instanceEnv is what every instance of a cluster shares. DRAIN_DELAY is
// above HAProxy's 1 s to notice a failing /readyz and nginx's 1 s upstream
// keepalive timeout (see deploy/).
func instanceEnv(dbURL, redisURL, dataDir string, extra ...string) []string {
	return append([]string{
		"DATABASE_URL=" + dbURL,
		"REDIS_URL=" + redisURL,
		"MODE=production",
		"LOG_LEVEL=warn",
		"LOG_FORMAT=text",
		"DRAIN_DELAY=2s",
		"SHUTDOWN_TIMEOUT=10s",
		"TRUSTED_PROXIES=127.0.0.1/32",
		"RATE_LIMIT_POINTS=0",
		"LOGIN_IP_LIMIT=1000000",
		"DB_MAX_CONNS=8",
		"SIGN_IN_NOTICES=false",
		"DATA_DIR=" + dataDir,
	}, extra...)
}

func startInstance(t testing.TB, name string, port int, env []string) *instance {
	t.Helper()
	i := &instance{owner: t, name: name, port: port, env: env}
	i.start(t)
	return i
}

func (i *instance) start(t testing.TB) {
	t.Helper()
	env := append(append([]string{}, i.env...), fmt.Sprintf("ADDR=127.0.0.1:%d", i.port))
	i.proc = startProcess(t, i.owner, i.name, env, binary, "serve")
	waitFor(t, i.name+" to be ready", 60*time.Second, func() bool {
		if !i.proc.running() {
			t.Fatalf("%s exited while starting: %v\n%s", i.name, i.proc.err, tail(i.proc.logs(), 30))
		}
		resp, err := http.Get(i.url() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// startRedis runs a Redis for the cluster.
func startRedis(t testing.TB) *redistest.Server { return redistest.Start(t) }

// render copies a configuration file from deploy/ with some lines
// replaced: each key of replace is a regular expression matched against
// whole lines.
func render(t testing.TB, src string, replace map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, src))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for pattern, with := range replace {
		re := regexp.MustCompile("(?m)" + pattern)
		if !re.MatchString(s) {
			t.Fatalf("%s has no line matching %q: the test no longer fits the shipped configuration", src, pattern)
		}
		s = re.ReplaceAllLiteralString(s, with)
	}
	return s
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// balancer is nginx or HAProxy in front of the instances.
type balancer struct {
	name string
	url  string
	proc *process
}

// startNginx runs deploy/nginx/nginx.conf with the instances as upstreams.
func startNginx(t testing.TB, dir string, instances []*instance) *balancer {
	t.Helper()
	bin := program(t, "nginx")
	port := freePort(t)
	conf := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	var ups strings.Builder
	for _, i := range instances {
		fmt.Fprintf(&ups, "server 127.0.0.1:%d max_fails=1 fail_timeout=2s;\n", i.port)
	}
	writeFile(t, filepath.Join(conf, "upstreams.conf"), ups.String())
	writeFile(t, filepath.Join(conf, "nginx.conf"), render(t, "deploy/nginx/nginx.conf", map[string]string{
		`^\s*listen 8080;$`:   fmt.Sprintf("        listen 127.0.0.1:%d;", port),
		`^\s*access_log .*;$`: "    access_log off;",
	}))
	p := startProcess(t, t, "nginx", nil, bin, "-p", conf, "-c", filepath.Join(conf, "nginx.conf"),
		"-g", "daemon off; pid "+filepath.Join(conf, "nginx.pid")+";")
	b := &balancer{name: "nginx", url: fmt.Sprintf("http://127.0.0.1:%d", port), proc: p}
	b.waitReady(t)
	return b
}

// startHAProxy runs deploy/haproxy/haproxy.cfg with the instances as the
// backend's servers.
func startHAProxy(t testing.TB, dir string, instances []*instance) *balancer {
	t.Helper()
	bin := program(t, "haproxy")
	port := freePort(t)
	var servers strings.Builder
	for _, i := range instances {
		fmt.Fprintf(&servers, "    server %s 127.0.0.1:%d\n", i.name, i.port)
	}
	cfg := render(t, "deploy/haproxy/haproxy.cfg", map[string]string{
		`^\s*bind :8080$`:                   fmt.Sprintf("    bind 127.0.0.1:%d", port),
		`^\s*server app1 app1:8080\n`:       servers.String(),
		`^\s*server app[23] app[23]:8080\n`: "",
	})
	path := filepath.Join(dir, "haproxy.cfg")
	writeFile(t, path, cfg)
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	p := startProcess(t, t, "haproxy", nil, bin, "-db", "-f", path)
	b := &balancer{name: "haproxy", url: fmt.Sprintf("http://127.0.0.1:%d", port), proc: p}
	b.waitReady(t)
	return b
}

// waitReady waits until the balancer answers GraphQL through an instance.
func (b *balancer) waitReady(t testing.TB) {
	t.Helper()
	waitFor(t, b.name+" to proxy", 30*time.Second, func() bool {
		if !b.proc.running() {
			t.Fatalf("%s exited: %v\n%s", b.name, b.proc.err, tail(b.proc.logs(), 30))
		}
		r := post(b.url, "", `{ __typename }`, nil)
		return r.ok()
	})
}

// startPgBouncer runs deploy/pgbouncer/pgbouncer.ini in front of the
// primary, trusting loopback instead of the shipped SCRAM user list.
func startPgBouncer(t testing.TB, dir string, primary *postgres) (url, adminURL string) {
	t.Helper()
	bin := program(t, "pgbouncer")
	port := freePort(t)
	conf := filepath.Join(dir, "pgbouncer")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(conf, "userlist.txt"), `"postgres" ""`+"\n")
	writeFile(t, filepath.Join(conf, "pgbouncer.ini"), render(t, "deploy/pgbouncer/pgbouncer.ini", map[string]string{
		`^usergraph = host=.*$`: fmt.Sprintf("usergraph = host=127.0.0.1 port=%d dbname=usergraph", primary.srv.Port()),
		`^listen_addr = .*$`:    "listen_addr = 127.0.0.1",
		`^listen_port = .*$`:    fmt.Sprintf("listen_port = %d", port),
		`^auth_type = .*$`:      "auth_type = trust",
		`^auth_file = .*$`:      "auth_file = " + filepath.Join(conf, "userlist.txt"),
		`^admin_users = .*$`:    "admin_users = postgres",
	}))
	args := []string{filepath.Join(conf, "pgbouncer.ini")}
	if os.Getuid() == 0 {
		args = append([]string{"-u", "postgres"}, args...) // it refuses to run as root
		if out, err := exec.Command("chown", "-R", "postgres", conf).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v\n%s", err, out)
		}
	}
	p := startProcess(t, t, "pgbouncer", nil, bin, args...)
	url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/usergraph?sslmode=disable&default_query_exec_mode=cache_describe", port)
	adminURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/pgbouncer?sslmode=disable&default_query_exec_mode=simple_protocol", port)
	waitFor(t, "pgbouncer to accept connections", 20*time.Second, func() bool {
		if !p.running() {
			t.Fatalf("pgbouncer exited: %v\n%s", p.err, tail(p.logs(), 30))
		}
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			return false
		}
		conn.Close(context.Background())
		return true
	})
	return url, adminURL
}

// connect opens a connection that the test closes when it ends.
func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// syncReplica waits until the replica has replayed everything the primary
// has written so far.
func syncReplica(t testing.TB, primaryURL, replicaURL string) {
	t.Helper()
	var lsn string
	query(t, primaryURL, `SELECT pg_current_wal_lsn()::text`, nil, &lsn)
	waitFor(t, "the replica to replay "+lsn, 30*time.Second, func() bool {
		var done bool
		query(t, replicaURL, `SELECT COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)`, []any{lsn}, &done)
		return done
	})
}
