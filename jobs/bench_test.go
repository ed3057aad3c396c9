package jobs_test

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/db/dbtest"
	"github.com/usergraph/usergraph/jobs"
)

// BenchmarkJobThroughput measures how fast welcome emails go from enqueued
// to sent, through the product's own paths, River's workers, the mailer's
// user lookup and rendering, and a sender that only counts:
//
//   - enqueue=bulk is an import with sendWelcome: WelcomeManyTx enqueues
//     each batch of importBatch users with one COPY in the batch's pgx
//     transaction;
//   - enqueue=each is createUser: WelcomeTx, one INSERT per job, here
//     enqueueBatch of them per gorm transaction.
//
// It reports enqueue-jobs/s (jobs committed per second, workers running
// meanwhile) and jobs/s (end to end, from the first enqueue to the last
// delivery). Run it with a fixed count, for example:
//
//	go test -run '^$' -bench JobThroughput -benchtime 20000x ./jobs/
//
// River fetches a queue's jobs at most once per FetchCooldown (5ms here),
// each time up to the free worker slots, so end-to-end throughput cannot
// exceed about 200 × EmailConcurrency jobs per second however fast the
// sender is; the sub-benchmarks show where the database and the CPU bound
// it instead, and BenchmarkRiverFloor what River alone reaches.
//
// Figures from this machine belong in the README; they are never asserted.
func BenchmarkJobThroughput(b *testing.B) {
	for _, enqueue := range []string{"bulk", "each"} {
		for _, concurrency := range []int{20, 50, 100} {
			b.Run(fmt.Sprintf("enqueue=%s/email_concurrency=%d", enqueue, concurrency), func(b *testing.B) {
				benchmarkJobThroughput(b, enqueue == "bulk", concurrency)
			})
		}
	}
}

const (
	// importBatch is the import's batch size (jobs/import.go).
	importBatch = 1000
	// enqueueBatch is how many createUser-style enqueues share a
	// transaction.
	enqueueBatch = 500
)

func benchmarkJobThroughput(b *testing.B, bulk bool, concurrency int) {
	ctx := context.Background()
	// The workers and the enqueuer share the pool: size it so that it is
	// not what bounds the figure (dbtest.New's pool holds 10).
	d, err := db.Open(ctx, db.Config{URL: dbtest.URL(b), MaxConns: int32(concurrency + 10)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(d.Close)
	ids := insertUsers(b, d, b.N)

	sent := &countingSender{want: int64(b.N), done: make(chan struct{})}
	public, _ := url.Parse("https://users.example.com")
	work, err := jobs.New(d, sent, jobs.Config{Workers: true, PublicURL: public, ExportDir: b.TempDir(), EmailConcurrency: concurrency})
	if err != nil {
		b.Fatal(err)
	}
	if err := work.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = work.Stop(stopCtx)
	})

	b.ResetTimer()
	start := time.Now()
	if bulk {
		for lo := 0; lo < len(ids); lo += importBatch {
			batch := ids[lo:min(lo+importBatch, len(ids))]
			if err := pgx.BeginFunc(ctx, d.Pool, func(tx pgx.Tx) error {
				return work.WelcomeManyTx(ctx, tx, batch)
			}); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		for lo := 0; lo < len(ids); lo += enqueueBatch {
			batch := ids[lo:min(lo+enqueueBatch, len(ids))]
			if err := d.InTx(ctx, func(tx *db.Tx) error {
				for _, id := range batch {
					if err := work.WelcomeTx(ctx, tx, id); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
	}
	enqueued := time.Since(start)
	select {
	case <-sent.done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d welcome emails sent after 5 minutes", sent.n.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	b.ReportMetric(float64(b.N)/enqueued.Seconds(), "enqueue-jobs/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
}

// insertUsers creates n users in one statement, bypassing the user store:
// the benchmark measures jobs, not user creation.
func insertUsers(b *testing.B, d *db.DB, n int) []uuid.UUID {
	b.Helper()
	rows, err := d.Pool.Query(context.Background(),
		`INSERT INTO users (id, email, username)
		 SELECT gen_random_uuid(), 'bench' || i || '@example.com', 'bench' || i FROM generate_series(1, $1) AS i
		 RETURNING id`, n)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	ids := make([]uuid.UUID, 0, n)
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	// As autovacuum would soon: planned on an empty table's guesses, a
	// lookup by several ids scans the whole table.
	if _, err := d.Pool.Exec(context.Background(), "ANALYZE users"); err != nil {
		b.Fatal(err)
	}
	return ids
}

// countingSender delivers nothing and closes done once want emails have
// been sent.
type countingSender struct {
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (s *countingSender) Send(context.Context, jobs.Email) error {
	if s.n.Add(1) == s.want {
		close(s.done)
	}
	return nil
}
