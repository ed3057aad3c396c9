package embeddedpg_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usergraph/usergraph/embeddedpg"
)

// testSettings trade durability for speed: a throwaway server needs no fsync.
func testSettings() map[string]string { return map[string]string{"fsync": "off"} }

// newDataDir returns a data directory path in a fresh temporary directory.
// Not t.TempDir: its parent is created with mode 0700, which the postgres
// user cannot traverse when the tests run as root.
func newDataDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "embeddedpg-test-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(dir, "data")
}

func testConfig(tb testing.TB) embeddedpg.Config {
	return embeddedpg.Config{
		DataDir:  newDataDir(tb),
		Logger:   slog.New(slog.NewTextHandler(tb.Output(), nil)),
		Settings: testSettings(),
	}
}

// start starts a server and stops it when the test ends.
func start(tb testing.TB, cfg embeddedpg.Config) *embeddedpg.Server {
	tb.Helper()
	s, err := embeddedpg.Start(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s
}

func connect(tb testing.TB, url string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		tb.Fatalf("connecting to %s: %v", url, err)
	}
	tb.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// expectedUser is who the server runs as, and so the superuser's name.
func expectedUser(t *testing.T) string {
	t.Helper()
	if os.Geteuid() == 0 {
		return "postgres"
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// serverUserCredential returns what a child needs to run as the server's
// user, or nil when that is the current user.
func serverUserCredential(t *testing.T) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(expectedUser(t))
	if err != nil {
		t.Fatal(err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// postmasterPID reads the server's pid from the lock file it keeps in its
// data directory.
func postmasterPID(t *testing.T, dataDir string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(data), "\n", 2)[0])
	if err != nil {
		t.Fatalf("parsing postmaster.pid: %v", err)
	}
	return pid
}

func TestStartServesTheDatabaseOnLoopback(t *testing.T) {
	t.Parallel()
	s := start(t, testConfig(t))

	want := fmt.Sprintf("postgres://%s@127.0.0.1:%d/usergraph?sslmode=disable", expectedUser(t), s.Port())
	if s.URL() != want {
		t.Errorf("URL() = %q, want %q", s.URL(), want)
	}
	var database, currentUser, addr, fsync, maxConnections string
	err := connect(t, s.URL()).QueryRow(context.Background(),
		"SELECT current_database(), current_user, host(inet_server_addr()), current_setting('fsync'), current_setting('max_connections')").
		Scan(&database, &currentUser, &addr, &fsync, &maxConnections)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{database, currentUser, addr, fsync, maxConnections}
	wantRow := []string{"usergraph", expectedUser(t), "127.0.0.1", "off", "200"}
	if strings.Join(got, " ") != strings.Join(wantRow, " ") {
		t.Errorf("database, user, address, fsync, max_connections = %q, want %q", got, wantRow)
	}
}

func TestStartCreatesADatabaseWhoseNameNeedsQuoting(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Database = `Graph "Test"-db`
	s := start(t, cfg)

	var database string
	if err := connect(t, s.URL()).QueryRow(context.Background(), "SELECT current_database()").Scan(&database); err != nil {
		t.Fatal(err)
	}
	if database != cfg.Database {
		t.Errorf("current_database() = %q, want %q", database, cfg.Database)
	}
}

func TestDataSurvivesStopAndStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := testConfig(t)
	first := start(t, cfg)
	if _, err := connect(t, first.URL()).Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')"); err != nil {
		t.Fatal(err)
	}
	if err := first.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	second := start(t, cfg)
	var v string
	if err := connect(t, second.URL()).QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != "still here" {
		t.Errorf("after restart, kept.v = %q, want %q", v, "still here")
	}
}

func TestStartRecoversAfterTheServerWasKilled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := testConfig(t)
	first := start(t, cfg)
	if _, err := connect(t, first.URL()).Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('committed')"); err != nil {
		t.Fatal(err)
	}

	// SIGKILL leaves postmaster.pid behind, as the OOM killer or a power cut
	// would.
	if err := syscall.Kill(postmasterPID(t, cfg.DataDir), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := first.Stop(ctx); err == nil {
		t.Error("Stop after the server was killed returned nil, want an error reporting the unexpected exit")
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "postmaster.pid")); err != nil {
		t.Fatalf("postmaster.pid should be left behind by SIGKILL: %v", err)
	}

	second := start(t, cfg)
	var v string
	if err := connect(t, second.URL()).QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != "committed" {
		t.Errorf("after crash recovery, kept.v = %q, want %q", v, "committed")
	}
}

func TestStartIgnoresAStaleLockWhosePIDNowBelongsToAnotherProgram(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := testConfig(t)
	first := start(t, cfg)
	if err := syscall.Kill(postmasterPID(t, cfg.DataDir), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Stop(ctx)

	// After a reboot or a container restart, the pid in a stale
	// postmaster.pid often belongs to an unrelated process. PostgreSQL alone
	// takes one of the server user's own processes for a running server.
	unrelated := exec.Command("sleep", "60")
	unrelated.SysProcAttr = &syscall.SysProcAttr{Credential: serverUserCredential(t)}
	if err := unrelated.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unrelated.Process.Kill(); _ = unrelated.Wait() })
	lockPath := filepath.Join(cfg.DataDir, "postmaster.pid")
	lock, err := os.ReadFile(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(lock), "\n")
	if err := os.WriteFile(lockPath, []byte(strconv.Itoa(unrelated.Process.Pid)+"\n"+rest), 0o600); err != nil {
		t.Fatal(err)
	}

	second := start(t, cfg)
	var one int
	if err := connect(t, second.URL()).QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
}

func TestStopIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := testConfig(t)
	s := start(t, cfg)

	for i := range 3 {
		if err := s.Stop(ctx); err != nil {
			t.Fatalf("Stop call %d: %v", i+1, err)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("postmaster.pid after Stop: %v, want it removed by a clean shutdown", err)
	}
	if conn, err := pgx.Connect(ctx, s.URL()); err == nil {
		_ = conn.Close(ctx)
		t.Error("connecting after Stop succeeded, want it refused")
	}
}

// helperDataDirEnv makes the test binary act as a process that starts a
// server and is then killed.
const helperDataDirEnv = "EMBEDDEDPG_TEST_PARENT_DATADIR"

func TestServerShutsDownWhenItsParentDies(t *testing.T) {
	if dataDir := os.Getenv(helperDataDirEnv); dataDir != "" {
		runDoomedParent(dataDir)
		return
	}
	t.Parallel()
	dataDir := newDataDir(t)

	parent := exec.Command(os.Args[0], "-test.run=^TestServerShutsDownWhenItsParentDies$")
	// The killed parent cannot remove its socket directory; keep it in ours.
	parent.Env = append(os.Environ(), helperDataDirEnv+"="+dataDir, "TMPDIR="+filepath.Dir(dataDir))
	var stderr bytes.Buffer
	parent.Stderr = &stderr
	stdin, err := parent.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
		_ = parent.Process.Kill()
		_ = parent.Wait()
		t.Fatalf("helper did not start a server (%q, %v): %s", line, err, stderr.String())
	}
	pid := postmasterPID(t, dataDir)

	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()

	// A clean (fast) shutdown removes postmaster.pid; SIGKILL would not.
	deadline := time.Now().Add(30 * time.Second)
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for processAlive(pid) || fileExists(filepath.Join(dataDir, "postmaster.pid")) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			t.Fatalf("postmaster %d still running (or postmaster.pid still present) 30s after its parent was killed", pid)
		}
		<-poll.C
	}
}

// runDoomedParent starts a server, says so, and waits to be killed.
func runDoomedParent(dataDir string) {
	cfg := embeddedpg.Config{DataDir: dataDir, Settings: testSettings()}
	if _, err := embeddedpg.Start(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(1)
}

// processAlive reports whether pid runs. A zombie does not: an orphan is
// reaped by whatever runs as pid 1, which in a container may never do so.
func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestStartWithoutBinariesReturnsErrNoBinaries(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	tests := map[string]embeddedpg.Config{
		"BinDir names an empty directory":        {BinDir: empty},
		"SearchPaths name an empty directory":    {SearchPaths: []string{empty}},
		"SearchPaths are empty, PATH unsearched": {SearchPaths: []string{}},
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg.DataDir = filepath.Join(t.TempDir(), "data")
			s, err := embeddedpg.Start(context.Background(), cfg)
			if err == nil {
				_ = s.Stop(context.Background())
				t.Fatal("Start succeeded, want ErrNoBinaries")
			}
			if !errors.Is(err, embeddedpg.ErrNoBinaries) {
				t.Errorf("Start error = %v, want it to wrap ErrNoBinaries", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("Start error %q spans several lines, want one", err)
			}
			if _, statErr := os.Stat(cfg.DataDir); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("DataDir was created (%v), want nothing touched before binaries are found", statErr)
			}
		})
	}
}

func TestStartNamesTheDirectoryTheServerUserCannotTraverse(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the data directory to another user")
	}
	t.Parallel()
	private, err := os.MkdirTemp("", "embeddedpg-private-") // mode 0700, owned by root
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(private) })
	cfg := embeddedpg.Config{DataDir: filepath.Join(private, "data"), Settings: testSettings()}

	s, err := embeddedpg.Start(context.Background(), cfg)
	if err == nil {
		_ = s.Stop(context.Background())
		t.Fatal("Start succeeded, want an error naming the untraversable directory")
	}
	if !strings.Contains(err.Error(), private+" ") {
		t.Errorf("Start error = %q, want it to name %s", err, private)
	}
}

func TestStartReportsTheServerLogWhenTheServerFails(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := testConfig(t)
	cfg.Port = taken.Addr().(*net.TCPAddr).Port

	s, err := embeddedpg.Start(context.Background(), cfg)
	if err == nil {
		_ = s.Stop(context.Background())
		t.Fatal("Start succeeded on a taken port, want an error")
	}
	if !strings.Contains(err.Error(), "could not bind IPv4 address") {
		t.Errorf("Start error = %q, want it to quote the server log's explanation", err)
	}
}

func TestStartRejectsSettingsItManages(t *testing.T) {
	t.Parallel()
	cfg := embeddedpg.Config{DataDir: filepath.Join(t.TempDir(), "data"), Settings: map[string]string{"port": "5432"}}
	s, err := embeddedpg.Start(context.Background(), cfg)
	if err == nil {
		_ = s.Stop(context.Background())
		t.Fatal("Start succeeded with Settings[port], want a validation error")
	}
	if !strings.Contains(err.Error(), "Config.Settings") {
		t.Errorf("Start error = %q, want it to name Config.Settings", err)
	}
}

// BenchmarkStartFresh measures initdb plus start plus stop.
func BenchmarkStartFresh(b *testing.B) {
	for b.Loop() {
		benchmarkStartStop(b, testConfig(b))
	}
}

// BenchmarkStartWarm measures start plus stop of an existing cluster.
func BenchmarkStartWarm(b *testing.B) {
	cfg := testConfig(b)
	benchmarkStartStop(b, cfg)
	for b.Loop() {
		benchmarkStartStop(b, cfg)
	}
}

func benchmarkStartStop(b *testing.B, cfg embeddedpg.Config) {
	s, err := embeddedpg.Start(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Stop(context.Background()); err != nil {
		b.Fatal(err)
	}
}

func TestServerKeepsTheMemoryItsStatementsFreed(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	start(t, cfg)

	// Backends are forked from the postmaster, not executed, so they run
	// with the malloc settings glibc read when the postmaster started. (A
	// backend's own /proc environ is overwritten by its process title.)
	pid := postmasterPID(t, cfg.DataDir)
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Skipf("cannot read the server's environment here: %v", err)
	}
	// glibc rewrites the variable once it has read it, and keeps only the first
	// tunable there: the trim threshold, which is the one that matters.
	want := "GLIBC_TUNABLES=" + strings.SplitN(embeddedpg.MallocTunables, ":", 2)[0]
	if !slices.ContainsFunc(strings.Split(string(environ), "\x00"), func(kv string) bool { return strings.HasPrefix(kv, want) }) {
		t.Errorf("postmaster %d's environment lacks %s", pid, want)
	}
}

func TestPostgresEnvLeavesTheCallersTunablesAlone(t *testing.T) {
	t.Parallel()
	own := []string{"PATH=/usr/bin", "GLIBC_TUNABLES=glibc.malloc.arena_max=2"}
	if got := embeddedpg.PostgresEnv(own); !slices.Equal(got, own) {
		t.Errorf("embeddedpg.PostgresEnv(%q) = %q, want it unchanged", own, got)
	}
	if got := embeddedpg.PostgresEnv([]string{"PATH=/usr/bin"}); !slices.Equal(got, []string{"PATH=/usr/bin", "GLIBC_TUNABLES=" + embeddedpg.MallocTunables}) {
		t.Errorf("postgresEnv without GLIBC_TUNABLES = %q, want embeddedpg.MallocTunables added", got)
	}
}
