// Package dbtest gives tests a real, freshly migrated PostgreSQL database.
//
// A test package calls Main from its TestMain. When TEST_DATABASE_URL is set
// (a superuser URL) that server is used; otherwise a throwaway server is
// started from the local PostgreSQL binaries with durability switched off
// for speed. Migrations run once into a template database; each New(t) then
// clones it (CREATE DATABASE ... TEMPLATE, milliseconds) and drops it when
// the test ends, so tests are isolated and can run in parallel.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/embeddedpg"
	"github.com/usergraph/usergraph/jobs"
)

var (
	// adminURL and template are set once by Main before any test runs and
	// only read afterwards.
	adminURL string
	template string
	mu       sync.Mutex
)

// Main starts the server, prepares the template, runs the tests and stops
// the server. Use it as: func TestMain(m *testing.M) { dbtest.Main(m) }.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	adminURL = os.Getenv("TEST_DATABASE_URL")
	if adminURL == "" {
		dir, err := os.MkdirTemp("", "usergraph-test-pg-*")
		if err != nil {
			fmt.Fprintln(os.Stderr, "dbtest:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		_ = os.Chmod(dir, 0o755) // the postgres user must reach its data directory
		srv, err := embeddedpg.Start(ctx, embeddedpg.Config{
			DataDir:  dir + "/data",
			Database: "postgres",
			Settings: map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "max_connections": "300"},
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "dbtest: starting PostgreSQL:", err)
			return 1
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_ = srv.Stop(stopCtx)
		}()
		adminURL = srv.URL()
	}
	template = "usergraph_tmpl_" + randomSuffix()
	if err := createTemplate(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "dbtest:", err)
		return 1
	}
	defer func() { _ = exec(ctx, adminURL, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", template)) }()
	return m.Run()
}

func createTemplate(ctx context.Context) error {
	if err := exec(ctx, adminURL, "CREATE DATABASE "+template); err != nil {
		return fmt.Errorf("creating template database: %w", err)
	}
	d, err := db.Open(ctx, db.Config{URL: withDatabase(adminURL, template), MaxConns: 2, MinConns: 1})
	if err != nil {
		return err
	}
	defer d.Close()
	m, err := db.NewMigrator(d.SQL)
	if err != nil {
		return err
	}
	if err := m.Up(ctx, slog.New(slog.DiscardHandler)); err != nil {
		return err
	}
	return jobs.Migrate(ctx, d, slog.New(slog.DiscardHandler))
}

// URL returns the URL of a fresh, migrated database that is dropped when t
// ends.
func URL(t testing.TB) string {
	t.Helper()
	if template == "" {
		t.Fatal("dbtest: call dbtest.Main from TestMain")
	}
	ctx := context.Background()
	name := "usergraph_test_" + randomSuffix()
	// CREATE DATABASE ... TEMPLATE refuses to run while another session is
	// connected to the template; serialize clones within this process.
	mu.Lock()
	err := exec(ctx, adminURL, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template))
	mu.Unlock()
	if err != nil {
		t.Fatalf("dbtest: creating database: %v", err)
	}
	t.Cleanup(func() {
		if err := exec(context.Background(), adminURL, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Errorf("dbtest: dropping database: %v", err)
		}
	})
	return withDatabase(adminURL, name)
}

// New returns a connection pool on a fresh, migrated database that is
// dropped when t ends.
func New(t testing.TB) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), db.Config{URL: URL(t), MaxConns: 10})
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(d.Close)
	return d
}

// Strings runs a query of one text column on pool and returns its rows.
func Strings(t testing.TB, pool *pgxpool.Pool, query string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return out
}

func exec(ctx context.Context, connURL, sql string) error {
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func withDatabase(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(fmt.Sprintf("dbtest: TEST_DATABASE_URL is not a URL: %v", err))
	}
	u.Path = "/" + name
	return u.String()
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
