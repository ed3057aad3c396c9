package jobs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/db/dbtest"
	"github.com/usergraph/usergraph/jobs"
)

// noopArgs is a job that does nothing: what is left is River's own work.
type noopArgs struct{ N int }

func (noopArgs) Kind() string { return "bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	done *countingSender
}

func (w *noopWorker) Work(context.Context, *river.Job[noopArgs]) error {
	return w.done.Send(context.Background(), jobs.Email{})
}

// BenchmarkRiverFloor is the floor under J1 (BenchmarkJobThroughput): River
// alone, with the email queue's settings and jobs that do nothing, enqueued
// as an import enqueues them (InsertManyFastTx, importBatch a transaction)
// into the product's migrated schema. Whatever the welcome worker does, J1
// cannot beat this figure on the same machine.
//
//	go test -run '^$' -bench RiverFloor -benchtime 20000x ./jobs/
func BenchmarkRiverFloor(b *testing.B) {
	for _, workers := range []int{50, 100} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			ctx := context.Background()
			d, err := db.Open(ctx, db.Config{URL: dbtest.URL(b), MaxConns: int32(workers + 10)})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(d.Close)
			done := &countingSender{want: int64(b.N), done: make(chan struct{})}
			workersReg := river.NewWorkers()
			river.AddWorker(workersReg, &noopWorker{done: done})
			client, err := river.NewClient(riverpgxv5.New(d.Pool), &river.Config{
				Queues:        map[string]river.QueueConfig{"bench": {MaxWorkers: workers}},
				Workers:       workersReg,
				FetchCooldown: jobs.FetchCooldown,
			})
			if err != nil {
				b.Fatal(err)
			}
			if err := client.Start(ctx); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = client.Stop(stopCtx)
			})
			b.ResetTimer()
			start := time.Now()
			for lo := 0; lo < b.N; lo += importBatch {
				params := make([]river.InsertManyParams, 0, importBatch)
				for i := lo; i < min(lo+importBatch, b.N); i++ {
					params = append(params, river.InsertManyParams{Args: noopArgs{N: i}, InsertOpts: &river.InsertOpts{Queue: "bench"}})
				}
				if err := pgx.BeginFunc(ctx, d.Pool, func(tx pgx.Tx) error {
					_, err := client.InsertManyFastTx(ctx, tx, params)
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-done.done:
			case <-time.After(5 * time.Minute):
				b.Fatalf("%d of %d jobs worked after 5 minutes", done.n.Load(), b.N)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
		})
	}
}
