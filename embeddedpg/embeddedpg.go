// Package embeddedpg runs a private PostgreSQL server from the server binaries
// installed on the machine, so that `usergraph serve` works without a
// DATABASE_URL and tests get a real, throwaway database without Docker.
//
// The server is a child of the calling process: it listens on loopback only,
// trusts every local connection, and shuts down when the caller calls
// [Server.Stop] or when the caller dies. It is meant for development and
// tests, never for production data.
package embeddedpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNoBinaries is returned by [Start] when neither Config.BinDir nor the
// search path holds both `postgres` and `initdb`. Callers check for it with
// errors.Is to tell "this machine has no PostgreSQL" apart from a server that
// failed to start, and can show its message as is: it says how to fix it.
var ErrNoBinaries = errors.New("PostgreSQL server binaries not found: install them (Debian: apt-get install postgresql) or set DATABASE_URL")

// Config configures [Start]. The zero value is not usable: DataDir is required.
type Config struct {
	// DataDir is the cluster's data directory. It is created if missing, and
	// initdb runs when it holds no cluster yet (no PG_VERSION file), so the
	// same DataDir gives persistent data across runs. initdb refuses a
	// directory that is not empty but holds no cluster.
	DataDir string

	// Port is the TCP port the server listens on at 127.0.0.1. Defaults to a
	// free port picked at start; if another process takes that port before
	// the server binds it, Start picks another one.
	Port int

	// BinDir is the directory holding the `postgres` and `initdb` binaries.
	// When set, only this directory is used. Defaults to the first directory
	// of SearchPaths holding both.
	BinDir string

	// SearchPaths are the directories searched for the binaries when BinDir
	// is empty. Defaults (when nil) to the directories of $PATH followed by
	// /usr/lib/postgresql/*/bin, highest version first; that is where Debian
	// installs the server, outside $PATH. A non-nil empty slice searches
	// nothing.
	SearchPaths []string

	// RunAsUser is the operating system user the server runs as, and also the
	// name of the cluster's superuser, so it is the user in [Server.URL].
	// PostgreSQL refuses to run as root, so when the caller is root the data
	// directory is handed over to this user and the server runs with its
	// credentials. A caller that is not root can only run the server as
	// itself. The superuser is named when the cluster is created, so a
	// DataDir must keep being run as the same user. Defaults to "postgres"
	// when the caller is root, else to the current user.
	RunAsUser string

	// Database is created when missing, so the URL is usable at once.
	// Extensions and schema are the caller's business. Defaults to
	// "usergraph".
	Database string

	// LogPath is the file the server's output (and initdb's) is appended to.
	// It sits outside DataDir because initdb requires an empty directory.
	// Defaults to "<DataDir>.log", e.g. ./.data/postgres.log for
	// ./.data/postgres.
	LogPath string

	// Logger receives one-line status messages (initializing, started,
	// retrying, stopped); the server's own output goes to LogPath. Defaults to
	// discarding them.
	Logger *slog.Logger

	// Settings are extra server settings, passed as `-c name=value`, and
	// override the defaults shared_buffers=128MB and max_connections=200.
	// Durability is traded away only on request: fsync=off here (sensible
	// for tests) also makes initdb skip its final sync. listen_addresses,
	// port and unix_socket_directories are managed by Start and may not be
	// set.
	Settings map[string]string

	// StartTimeout bounds how long Start waits for the server to accept
	// connections. Crash recovery after an unclean stop counts against it, as
	// does waiting for the processes of a just-killed server to let go of
	// the data directory. Defaults to 30s.
	StartTimeout time.Duration
}

// WithDefaults returns a copy of the config with every unset field that has a
// fixed default filled in. RunAsUser and SearchPaths depend on the
// environment, so Start resolves them.
func (c Config) WithDefaults() Config {
	if c.Database == "" {
		c.Database = "usergraph"
	}
	if c.LogPath == "" && c.DataDir != "" {
		clean := filepath.Clean(c.DataDir)
		c.LogPath = filepath.Join(filepath.Dir(clean), filepath.Base(clean)+".log")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 30 * time.Second
	}
	return c
}

func (c Config) validate() error {
	if c.DataDir == "" {
		return errors.New("Config.DataDir is required")
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("Config.Port %d is out of range", c.Port)
	}
	if len(c.Database) > 63 {
		return fmt.Errorf("Config.Database %q is longer than PostgreSQL's 63-byte identifier limit", c.Database)
	}
	if c.StartTimeout < 0 {
		return fmt.Errorf("Config.StartTimeout %v is negative", c.StartTimeout)
	}
	// Start chooses these itself: overriding them would break the URL or the
	// private socket directory.
	managed := []string{"listen_addresses", "port", "unix_socket_directories"}
	for name := range c.Settings {
		for _, managed := range managed {
			if strings.EqualFold(name, managed) {
				return fmt.Errorf("Config.Settings may not set %s: Start manages it", managed)
			}
		}
	}
	return nil
}

// Server is a running PostgreSQL server started by [Start].
type Server struct {
	url       string
	port      int
	proc      *postmaster
	socketDir string
	logPath   string
	logger    *slog.Logger

	stopOnce sync.Once
	stopErr  error
}

// Start initializes DataDir if it holds no cluster, starts the server, waits
// until it accepts connections and creates Config.Database if missing. ctx
// bounds the start only; the server then runs until [Server.Stop] or until
// the calling process dies (the server is sent SIGINT, a fast shutdown, when
// that happens).
//
// Start returns an error wrapping [ErrNoBinaries] when the binaries are not
// installed. When the server fails to start, the error includes the tail of
// the server log.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	began := time.Now()
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("error validating embedded PostgreSQL config: %w", err)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("error resolving DataDir %s: %w", cfg.DataDir, err)
	}
	logPath, err := filepath.Abs(cfg.LogPath)
	if err != nil {
		return nil, fmt.Errorf("error resolving LogPath %s: %w", cfg.LogPath, err)
	}

	bins, err := findBinaries(cfg.BinDir, cfg.SearchPaths)
	if err != nil {
		return nil, err
	}
	acct, err := lookupAccount(cfg.RunAsUser)
	if err != nil {
		return nil, err
	}

	if err := prepareDataDir(dataDir, acct); err != nil {
		return nil, err
	}
	logFile, err := openLog(logPath, acct)
	if err != nil {
		return nil, err
	}
	// The children hold their own descriptors for the log, so ours is only
	// needed while starting them.
	defer logFile.Close()

	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		cfg.Logger.Info("initializing PostgreSQL data directory", "dir", dataDir, "bin_dir", bins.dir)
		if err := initdb(ctx, bins, dataDir, acct, isOff(cfg.Settings["fsync"]), logFile); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("error checking for a cluster in %s: %w", dataDir, err)
	}

	if err := removeStaleLock(dataDir, cfg.Logger); err != nil {
		return nil, err
	}

	socketDir, err := makeSocketDir(acct)
	if err != nil {
		return nil, err
	}
	s := &Server{socketDir: socketDir, logPath: logPath, logger: cfg.Logger}
	if err := s.launch(ctx, cfg, bins, dataDir, acct, logFile); err != nil {
		_ = os.RemoveAll(socketDir)
		return nil, err
	}
	s.url = serverURL(acct.name, s.port, cfg.Database)
	if err := createDatabase(ctx, serverURL(acct.name, s.port, "postgres"), cfg.Database); err != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = s.Stop(stopCtx)
		return nil, err
	}
	cfg.Logger.Info("PostgreSQL started", "url", s.url, "data_dir", dataDir, "log", logPath,
		"took", time.Since(began).Round(time.Millisecond))
	return s, nil
}

// URL returns the server's connection URL for Config.Database, in the form
// postgres://<RunAsUser>@127.0.0.1:<port>/<database>?sslmode=disable. No
// password is needed: the server trusts loopback connections.
func (s *Server) URL() string { return s.url }

// Port returns the TCP port the server listens on at 127.0.0.1.
func (s *Server) Port() int { return s.port }

// Stop shuts the server down with a fast shutdown (open transactions are
// rolled back, clients disconnected, a checkpoint written) and waits for it to
// exit. If ctx ends first, the server's whole process group is killed, which
// is safe but means crash recovery at the next start.
//
// Stop is idempotent: later calls wait for the first to finish and return its
// result. It also reports a server that had already died on its own.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.stopErr = s.stop(ctx)
		if err := os.RemoveAll(s.socketDir); err != nil && s.stopErr == nil {
			s.stopErr = fmt.Errorf("error removing socket directory: %w", err)
		}
	})
	return s.stopErr
}

func (s *Server) stop(ctx context.Context) error {
	select {
	case <-s.proc.exited:
		return fmt.Errorf("PostgreSQL had exited before Stop (%v); see %s", s.proc.err, s.logPath)
	default:
	}
	if err := s.proc.stop(ctx); err != nil {
		return fmt.Errorf("error stopping PostgreSQL (see %s): %w", s.logPath, err)
	}
	s.logger.Info("PostgreSQL stopped", "port", s.port)
	return nil
}

// launch starts the postmaster and waits until it accepts connections,
// within cfg.StartTimeout. Two failures are transient and retried: a port
// picked by us being taken by someone else before the server binds it (then
// another port is picked), and the processes of a server that was just killed
// still holding its shared memory (they exit soon after noticing their
// postmaster is gone, and PostgreSQL refuses to start until they have).
func (s *Server) launch(ctx context.Context, cfg Config, bins binaries, dataDir string, acct account, logFile *os.File) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	const portAttempts = 3
	for portAttempt := 1; ; {
		port := cfg.Port
		if port == 0 {
			var err error
			if port, err = freePort(); err != nil {
				return err
			}
		}
		logStart, err := logFile.Seek(0, io.SeekEnd)
		if err != nil {
			return fmt.Errorf("error reading log position: %w", err)
		}

		cmd := exec.Command(bins.postgres, postgresArgs(dataDir, port, s.socketDir, cfg.Settings)...)
		cmd.Env = postgresEnv(os.Environ())
		cmd.Dir = dataDir // the child changes directory after dropping root, so it must be its own
		cmd.Stdout = logFile
		cmd.Stderr = logFile
		cmd.SysProcAttr = sysProcAttr(acct.credential, syscall.SIGINT)
		proc, err := startPostmaster(cmd)
		if err != nil {
			return fmt.Errorf("error starting %s: %w", bins.postgres, err)
		}

		err = waitReady(ctx, proc, dataDir, acct.name, s.socketDir, port)
		if err == nil {
			s.proc, s.port = proc, port
			return nil
		}
		// A server still recovering may hold persistent data: a fast
		// shutdown spares it from redoing the recovery next time.
		stopCtx, cancelStop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_ = proc.stop(stopCtx)
		cancelStop()
		tail := logTail(s.logPath, logStart, 20)
		retry := false
		switch {
		case ctx.Err() != nil:
		case cfg.Port == 0 && portAttempt < portAttempts && strings.Contains(tail, "could not bind"):
			cfg.Logger.Info("PostgreSQL port was taken, retrying on another", "port", port)
			portAttempt++
			retry = true
		case strings.Contains(tail, "pre-existing shared memory block"):
			cfg.Logger.Info("waiting for the processes of a killed PostgreSQL server to exit", "data_dir", dataDir)
			retry = true
		}
		if !retry {
			return fmt.Errorf("error starting PostgreSQL: %w; last lines of %s:\n%s", err, s.logPath, tail)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("error starting PostgreSQL: %w; last lines of %s:\n%s", ctx.Err(), s.logPath, tail)
		}
	}
}

// postgresArgs builds the postmaster's command line. Settings are sorted so
// that the command line, visible in ps, is stable.
func postgresArgs(dataDir string, port int, socketDir string, extra map[string]string) []string {
	settings := map[string]string{
		"shared_buffers":  "128MB",
		"max_connections": "200",
	}
	for name, value := range extra {
		settings[name] = value
	}
	settings["listen_addresses"] = "127.0.0.1"
	settings["port"] = strconv.Itoa(port)
	settings["unix_socket_directories"] = socketDir

	args := []string{"-D", dataDir}
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		args = append(args, "-c", name+"="+settings[name])
	}
	return args
}

// mallocTunables lets each backend keep the memory its statements freed for
// the next one, instead of handing it back to the kernel.
//
// glibc trims the top of a process's heap once more than 128 KiB of it is
// free. A backend whose statement allocates a few MiB and frees them (a GIN
// index's posting lists, above all the trigram search's) therefore grows its
// heap again, page fault by page fault, on every statement: a quarter of
// PostgreSQL's CPU for the search at a million users. Trimming only past
// 32 MiB free, and growing the heap 16 MiB at a time, doubled the search
// statement's rate under 8 clients (pgbench: 1,450 -> 2,800 statements/s;
// see README "Performance"). A backend keeps at most its own peak, less
// than 32 MiB more than it holds in use.
const mallocTunables = "glibc.malloc.trim_threshold=33554432:glibc.malloc.top_pad=16777216"

// postgresEnv is the postmaster's environment: the caller's, with
// mallocTunables unless the caller sets GLIBC_TUNABLES itself. Other C
// libraries ignore the variable.
func postgresEnv(environ []string) []string {
	for _, kv := range environ {
		if strings.HasPrefix(kv, "GLIBC_TUNABLES=") {
			return environ
		}
	}
	return append(slices.Clip(environ), "GLIBC_TUNABLES="+mallocTunables)
}

// initdb creates the cluster. The superuser is named after the OS user so
// that the URL's user exists. Trust authentication keeps the URL free of
// secrets; it admits only the local socket (whose directory is private) and
// loopback addresses, which is acceptable on a development machine or CI
// runner but means any local user may connect over TCP as superuser.
func initdb(ctx context.Context, bins binaries, dataDir string, acct account, noSync bool, logFile *os.File) error {
	// C.UTF-8 gives Unicode-aware upper() and regex classes with the stable,
	// byte-wise sort order of C; it is missing on some older systems.
	var out []byte
	var err error
	for _, locale := range []string{"C.UTF-8", "C"} {
		args := []string{"-D", dataDir, "-U", acct.name, "-A", "trust", "--encoding=UTF8", "--locale=" + locale}
		if noSync {
			args = append(args, "--no-sync")
		}
		cmd := exec.CommandContext(ctx, bins.initdb, args...)
		cmd.Dir = dataDir
		// On SIGTERM initdb removes what it created; killed, it would leave a
		// half-made cluster that later starts would take for a real one.
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 10 * time.Second
		cmd.SysProcAttr = sysProcAttr(acct.credential, syscall.SIGTERM)
		out, err = runOnLockedThread(cmd)
		_, _ = logFile.Write(out)
		if err == nil {
			return nil
		}
		if !bytes.Contains(out, []byte("invalid locale")) {
			break
		}
	}
	return fmt.Errorf("error initializing a PostgreSQL cluster in %s (%w):\n%s", dataDir, err, lastLines(string(out), 20))
}

// waitReady waits until the server accepts a connection or fails. It
// connects through the private unix socket, not TCP: if another process took
// our port, a TCP connection could reach that process and pass for our
// server. Each connection attempt made while the server is still starting
// (or recovering) leaves a FATAL line in its log, so attempts wait for the
// server to declare itself ready in postmaster.pid, with a slow fallback for
// versions that do not.
func waitReady(ctx context.Context, proc *postmaster, dataDir, user, socketDir string, port int) error {
	connString := fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=disable",
		quoteConnValue(socketDir), port, quoteConnValue(user))

	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	var lastAttempt time.Time
	lastErr := errors.New("the server never reported itself ready")
	for {
		lock, err := readLockFile(dataDir)
		declaredReady := err == nil && lock.pid == proc.pid && lock.status == "ready"
		if declaredReady || time.Since(lastAttempt) > time.Second {
			lastAttempt = time.Now()
			attemptCtx, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
			conn, err := pgx.Connect(attemptCtx, connString)
			cancelAttempt()
			if err == nil {
				return conn.Close(ctx)
			}
			lastErr = err
		}
		select {
		case <-proc.exited:
			return fmt.Errorf("PostgreSQL exited while starting (%v)", proc.err)
		case <-ctx.Done():
			return fmt.Errorf("PostgreSQL did not accept connections in time: %w (last error: %v)", ctx.Err(), lastErr)
		case <-poll.C:
		}
	}
}

// createDatabase connects over TCP, which also proves the URL handed to the
// caller works.
func createDatabase(ctx context.Context, maintenanceURL, name string) error {
	conn, err := pgx.Connect(ctx, maintenanceURL)
	if err != nil {
		return fmt.Errorf("error connecting to the new PostgreSQL server: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("error checking for database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: someone else won the race
		return nil
	}
	if err != nil {
		return fmt.Errorf("error creating database %q: %w", name, err)
	}
	return nil
}

// isOff reports whether a boolean setting's value means off, in any of the
// spellings PostgreSQL accepts.
func isOff(value string) bool {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "off", "of", "false", "fals", "fal", "fa", "f", "no", "n", "0":
		return true
	}
	return false
}

func serverURL(user string, port int, database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(user),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// quoteConnValue quotes a value for a keyword/value connection string, which
// is the form that can name a unix socket directory.
func quoteConnValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// freePort asks the kernel for a free loopback port. The port is free only
// until someone else binds it, which launch handles.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("error picking a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// makeSocketDir creates a private directory for the server's unix socket. It
// is not inside DataDir because a socket path is limited to about 107 bytes,
// and a data directory nested in a project or test directory easily exceeds
// that.
func makeSocketDir(acct account) (string, error) {
	const socketName = "/.s.PGSQL.65535"
	const maxSocketPath = 107
	base := os.TempDir()
	if len(base)+len("/embeddedpg-0000000000")+len(socketName) > maxSocketPath {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "embeddedpg-")
	if err != nil {
		return "", fmt.Errorf("error creating socket directory: %w", err)
	}
	if acct.credential != nil {
		if err := checkTraversable(filepath.Dir(dir), acct); err != nil {
			_ = os.RemoveAll(dir)
			return "", err
		}
		if err := os.Chown(dir, int(acct.uid), int(acct.gid)); err != nil {
			_ = os.RemoveAll(dir)
			return "", fmt.Errorf("error handing socket directory %s to user %s: %w", dir, acct.name, err)
		}
	}
	return dir, nil
}

// openLog opens the server log for appending, so the history of earlier runs
// is kept for diagnosis.
func openLog(path string, acct account) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("error opening PostgreSQL log: %w", err)
	}
	if acct.credential != nil {
		if err := f.Chown(int(acct.uid), int(acct.gid)); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("error handing log %s to user %s: %w", path, acct.name, err)
		}
	}
	return f, nil
}

// logTail returns the last lines written to the log since offset, for error
// messages: the server explains its failures there, not in its exit status.
func logTail(path string, offset int64, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(could not read log: %v)", err)
	}
	defer f.Close()
	const maxBytes = 64 << 10
	if info, err := f.Stat(); err == nil && info.Size()-offset > maxBytes {
		offset = info.Size() - maxBytes
	}
	data, err := io.ReadAll(io.NewSectionReader(f, offset, maxBytes))
	if err != nil {
		return fmt.Sprintf("(could not read log: %v)", err)
	}
	return lastLines(string(data), lines)
}

func lastLines(s string, n int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return strings.Join(all, "\n")
}
