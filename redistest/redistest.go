// Package redistest starts throwaway Redis servers for tests: a real
// redis-server on a free loopback port, without persistence, stopped when
// the test ends.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/usergraph/usergraph/cache"
)

// Server is a running redis-server.
type Server struct {
	URL  string
	cmd  *exec.Cmd
	port int
	bin  string
}

// Start runs a redis-server for the duration of t. It fails the test (it
// does not skip) when redis-server is not installed: `make test` installs it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server not found: install the Debian package redis-server (make test does)")
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), port: port, bin: bin}
	s.start(t)
	t.Cleanup(func() { s.Stop() })
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--protected-mode", "yes", "--loglevel", "warning")
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	c := s.Client(t)
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not answer within 10s")
		}
		time.Sleep(20 * time.Millisecond) // polling a starting server, not a test's own timing
	}
}

// Stop kills the server (connections are refused until Restart).
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGCONT) // a paused server must die too
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// Restart starts a fresh, empty server on the same port.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.start(t)
}

// Pause freezes the server (SIGSTOP): connections hang rather than fail,
// like a Redis stuck on a slow disk or a full network.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

// Resume continues a paused server.
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// Client returns a new client of the server, closed when t ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	// As in production: the per-call context deadlines bound every call,
	// also against a hung server.
	opt.ContextTimeoutEnabled = true
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Reads returns pipelined reads of the server, as production makes them,
// each bounded by timeout; closed when t ends.
func (s *Server) Reads(t testing.TB, timeout time.Duration) *cache.PipelinedReads {
	t.Helper()
	r, err := cache.NewPipelinedReads(s.URL, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// Coherence starts an API instance's cache.Coherence on the server, as
// serve does (prefix "ug:"), closed when t ends.
func (s *Server) Coherence(t testing.TB) *cache.Coherence {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := cache.NewCoherence(ctx, s.Client(t), cache.CoherenceConfig{Prefix: "ug:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Commands counts the commands of one name a client sends on their own
// (not in a pipeline): how many times a test's code went to Redis for them.
type Commands struct {
	name string
	n    atomic.Int64
}

// CountCommands starts counting the commands named name (lower case, as
// go-redis names them: "mget") that c sends.
func CountCommands(c *redis.Client, name string) *Commands {
	counted := &Commands{name: name}
	c.AddHook(counted)
	return counted
}

// Count is how many were sent so far.
func (c *Commands) Count() int64 { return c.n.Load() }

// DialHook, ProcessHook and ProcessPipelineHook implement redis.Hook.
func (c *Commands) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *Commands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == c.name {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *Commands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
