//go:build linux

package resolver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usergraph/usergraph/db"
)

// BenchmarkQueryCPU measures Q1-Q3 of `make bench` in what issue 8's targets
// are stated in: CPU time per request, of this process (the server, plus the
// little the benchmark spends building requests) and of PostgreSQL, next to
// ns/op, B/op and allocs/op. The production batch window (1ms) is used.
//
//	go test -run '^$' -bench QueryCPU -benchtime 2000x -benchmem ./resolver/
//
// Unlike BenchmarkQueries it decodes no response inside the loop, so the
// allocations counted are the server's. The figures are printed, never
// asserted.
func BenchmarkQueryCPU(b *testing.B) {
	queries := []struct{ name, query string }{
		{"Q1", `{ users(first: 50) { edges { cursor node { id email username } } pageInfo { hasNextPage endCursor } } }`},
		{"Q2", `{ users(first: 50) { nodes { id email username roles { name } groups(first: 5) { nodes { name } } } } }`},
		{"Q3", `{ users(first: 50) { nodes { id email username roles { name } groups(first: 5) { nodes { name memberCount } } } } }`},
	}
	bn := setupBench(b, time.Millisecond)
	pg := postmasterOf(b, bn.db)
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			body, err := json.Marshal(map[string]any{"query": q.query})
			if err != nil {
				b.Fatal(err)
			}
			var rec *httptest.ResponseRecorder
			self0, pg0 := selfCPU(), treeCPU(pg)
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+bn.token)
				rec = httptest.NewRecorder()
				bn.handler.ServeHTTP(rec, req)
			}
			self, pgTime := selfCPU()-self0, treeCPU(pg)-pg0
			var r response
			if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || len(r.Errors) > 0 {
				b.Fatalf("bad answer (%v): %s", err, rec.Body.String())
			}
			n := float64(b.N)
			b.ReportMetric(float64(self.Microseconds())/n, "cpu-µs/op")
			b.ReportMetric(float64(pgTime.Microseconds())/n, "pg-cpu-µs/op")
			b.ReportMetric(r.Extensions["sqlStatements"].(float64), "stmts/op")
		})
	}
}

// selfCPU is this process's user plus system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// postmasterOf returns the pid of the PostgreSQL server behind d: the parent
// of one of its backends (the tests' server runs on this machine).
func postmasterOf(b *testing.B, d *db.DB) int {
	b.Helper()
	var backend int
	if err := d.Pool.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		b.Fatal(err)
	}
	stat, err := procStat(backend)
	if err != nil || len(stat) < 2 {
		b.Skipf("PostgreSQL's processes are not readable here: %v", err)
	}
	pid, _ := strconv.Atoi(stat[1])
	return pid
}

// treeCPU is the CPU time of pid and its children (PostgreSQL's backends and
// helpers), from schedstat, which counts nanoseconds (stat counts 10ms ticks).
func treeCPU(pid int) time.Duration {
	total := schedCPU(pid)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if stat, err := procStat(child); err == nil && len(stat) > 1 && stat[1] == strconv.Itoa(pid) {
			total += schedCPU(child)
		}
	}
	return total
}

func schedCPU(pid int) time.Duration {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "schedstat"))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return 0
	}
	ns, _ := strconv.ParseInt(f[0], 10, 64)
	return time.Duration(ns)
}

// procStat returns the fields of /proc/<pid>/stat after the command name
// (state, ppid, ...).
func procStat(pid int) ([]string, error) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, err
	}
	s := string(raw)
	i := strings.LastIndex(s, ") ")
	if i < 0 {
		return nil, os.ErrInvalid
	}
	return strings.Fields(s[i+2:]), nil
}
