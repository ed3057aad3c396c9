package seed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"
)

// seedLock serializes seeds and rebuilds: two instances starting on a fresh
// database, or a seed and a server start finishing an interrupted one.
const seedLock = 7446354

// The tables a bulk load strips and rebuilds.
const bulkTables = "users, user_roles, group_members"

// step is one statement of a rebuild, journaled in seed_rebuild.
type step struct {
	n        int
	parallel bool
	sql      string
}

// stripForBulkLoad readies tx for a large load: it drops the secondary
// indexes of the bulk-loaded tables, the primary and foreign keys of the two
// relation tables (the users primary key stays: the load needs nothing else),
// and disables the counter triggers. The statements that put it all back,
// and recompute the counters in one pass, go into seed_rebuild in the same
// transaction, for Finish. Definitions are read from the catalog, so they
// always match the migrations.
func stripForBulkLoad(ctx context.Context, tx pgx.Tx) error {
	type def struct{ name, table, sql string }
	collect := func(q string) ([]def, error) {
		rows, err := tx.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("error reading the catalog: %w", err)
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (def, error) {
			var d def
			return d, r.Scan(&d.name, &d.table, &d.sql)
		})
	}
	indexes, err := collect(`SELECT i.indexname, i.tablename, i.indexdef FROM pg_indexes i
		WHERE i.schemaname = current_schema() AND i.tablename IN ('users', 'user_roles', 'group_members')
		AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)`)
	if err != nil {
		return err
	}
	// A primary key's index is built like any other, in parallel, and
	// attached as the key afterwards (ADD CONSTRAINT ... USING INDEX).
	keys, err := collect(`SELECT conname, conrelid::regclass::text, pg_get_indexdef(conindid) FROM pg_constraint
		WHERE contype = 'p' AND conrelid IN ('user_roles'::regclass, 'group_members'::regclass) ORDER BY conname`)
	if err != nil {
		return err
	}
	foreign, err := collect(`SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint
		WHERE contype = 'f' AND conrelid IN ('user_roles'::regclass, 'group_members'::regclass) ORDER BY conname`)
	if err != nil {
		return err
	}
	counterTriggers := []struct{ table, name string }{
		{"user_roles", "user_roles_count_ins"}, {"group_members", "group_members_count_ins"},
	}

	var strip []string
	var steps []step
	add := func(parallel bool, sql string) {
		steps = append(steps, step{n: len(steps) + 1, parallel: parallel, sql: sql})
	}
	for _, c := range foreign {
		strip = append(strip, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", c.table, pgx.Identifier{c.name}.Sanitize()))
	}
	for _, c := range keys {
		strip = append(strip, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", c.table, pgx.Identifier{c.name}.Sanitize()))
	}
	for _, ix := range indexes {
		strip = append(strip, "DROP INDEX "+pgx.Identifier{ix.name}.Sanitize())
	}
	for _, t := range counterTriggers {
		strip = append(strip, fmt.Sprintf("ALTER TABLE %s DISABLE TRIGGER %s", t.table, t.name))
	}

	// The index builds, longest first so that the last to finish is short:
	// the trigram index takes several times any B-tree.
	for _, ix := range indexes {
		if strings.Contains(ix.sql, "USING gin") {
			add(true, ix.sql)
		}
	}
	for _, c := range keys {
		add(true, c.sql)
	}
	for _, ix := range indexes {
		if !strings.Contains(ix.sql, "USING gin") {
			add(true, ix.sql)
		}
	}
	// Fresh statistics first: the planner would otherwise plan the key
	// checks and the counter update for the empty tables it last saw.
	add(false, "ANALYZE "+bulkTables)
	for _, c := range keys {
		add(false, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s PRIMARY KEY USING INDEX %s", c.table,
			pgx.Identifier{c.name}.Sanitize(), pgx.Identifier{c.name}.Sanitize()))
	}
	for _, c := range foreign {
		add(false, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", c.table, pgx.Identifier{c.name}.Sanitize(), c.sql))
	}
	for _, t := range counterTriggers {
		add(false, fmt.Sprintf("ALTER TABLE %s ENABLE TRIGGER %s", t.table, t.name))
	}
	// One aggregate per table; groups and roles without any holder keep
	// their count, which nothing in this load changed.
	add(false, `UPDATE groups g SET member_count = c.n FROM (SELECT gm.group_id, count(*) AS n FROM group_members gm
		JOIN users u ON u.id = gm.user_id AND u.deleted_at IS NULL GROUP BY gm.group_id) c WHERE g.id = c.group_id`)
	add(false, `UPDATE roles r SET user_count = c.n FROM (SELECT ur.role_id, count(*) AS n FROM user_roles ur
		JOIN users u ON u.id = ur.user_id AND u.deleted_at IS NULL GROUP BY ur.role_id) c WHERE r.id = c.role_id`)

	for _, stmt := range strip {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("error preparing bulk load (%s): %w", stmt, err)
		}
	}
	rows := make([][]any, len(steps))
	for i, s := range steps {
		rows[i] = []any{s.n, s.parallel, s.sql}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"seed_rebuild"}, []string{"step", "parallel", "statement"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("error journaling the rebuild: %w", err)
	}
	return nil
}

// FinishOptions says how to finish a bulk load's rebuild.
type FinishOptions struct {
	// Workers is the number of connections building indexes at once.
	// Defaults to the number of CPUs, and is capped by the pool's size.
	Workers int
	// Progress, when set, gets a line per statement with its duration.
	Progress io.Writer
}

// ErrRebuildPending is returned by a bulk load that finds another one's
// rebuild still journaled after finishing what it could: another seed is
// between its load and its rebuild.
var ErrRebuildPending = errors.New("seed: another bulk load's index rebuild is in progress")

// Finish runs what seed_rebuild holds: after a bulk load, or after one that
// was interrupted between committing its rows and rebuilding their indexes,
// which a server start then completes. The index builds run on several
// connections at once, each in its own transaction with its journal entry,
// so that an interrupted rebuild resumes where it stopped. Meanwhile one
// transaction holds the bulk-loaded tables in SHARE mode, which lets the
// builds run but keeps writers out until the unique indexes and keys are
// back, and then, in the same transaction, adds the keys, enables the
// triggers and recomputes the counters. It reports whether there was
// anything to do, and is one query when there is not.
func Finish(ctx context.Context, pool *pgxpool.Pool, opt FinishOptions) (bool, error) {
	var pending bool
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM seed_rebuild)").Scan(&pending); err != nil {
		if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
			return false, nil // a schema older than the journal: nothing of this kind to finish
		}
		return false, fmt.Errorf("error reading the seed rebuild journal: %w", err)
	}
	if !pending {
		return false, nil
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("error starting the seed rebuild: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	for _, stmt := range []string{
		"SET LOCAL statement_timeout = 0",
		"SET LOCAL maintenance_work_mem = '256MB'",
		fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", seedLock),
		"LOCK TABLE " + bulkTables + " IN SHARE MODE",
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return false, fmt.Errorf("error starting the seed rebuild (%s): %w", stmt, err)
		}
	}
	rows, err := tx.Query(ctx, "SELECT step, parallel, statement FROM seed_rebuild ORDER BY step")
	if err != nil {
		return false, fmt.Errorf("error reading the seed rebuild journal: %w", err)
	}
	steps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (step, error) {
		var s step
		return s, r.Scan(&s.n, &s.parallel, &s.sql)
	})
	if err != nil {
		return false, fmt.Errorf("error reading the seed rebuild journal: %w", err)
	}
	if len(steps) == 0 { // finished by whoever held the lock before us
		return false, nil
	}

	var mu sync.Mutex
	report := func(d time.Duration, sql string) {
		if opt.Progress != nil {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(opt.Progress, "  %-8s %.70s\n", d.Round(time.Millisecond), strings.Join(strings.Fields(sql), " "))
		}
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	// One connection is the holding transaction's. With none left over,
	// the builds run in it, one after the other.
	workers = min(workers, int(pool.Config().MaxConns)-1)
	if workers < 1 {
		err = runInTx(ctx, tx, steps, true, report)
	} else {
		err = runBuilds(ctx, pool, steps, workers, report)
	}
	if err != nil {
		return false, err
	}
	if err := runInTx(ctx, tx, steps, false, report); err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, "DELETE FROM seed_rebuild"); err != nil {
		return false, fmt.Errorf("error clearing the seed rebuild journal: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("error committing the seed rebuild: %w", err)
	}
	return true, nil
}

// runInTx runs the steps whose parallel flag is as given in tx, in order.
func runInTx(ctx context.Context, tx pgx.Tx, steps []step, parallel bool, report func(time.Duration, string)) error {
	for _, s := range steps {
		if s.parallel != parallel {
			continue
		}
		t0 := time.Now()
		if _, err := tx.Exec(ctx, s.sql); err != nil {
			return fmt.Errorf("error finishing bulk load (%s): %w", s.sql, err)
		}
		report(time.Since(t0), s.sql)
	}
	return nil
}

// runBuilds runs the parallel steps on workers connections of their own,
// each in its own transaction with its journal entry (buildStep).
func runBuilds(ctx context.Context, pool *pgxpool.Pool, steps []step, workers int, report func(time.Duration, string)) error {
	builds := make(chan step)
	g, gctx := errgroup.WithContext(ctx)
	for range workers {
		g.Go(func() error {
			for s := range builds {
				t0 := time.Now()
				if err := buildStep(gctx, pool, s); err != nil {
					return err
				}
				report(time.Since(t0), s.sql)
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(builds)
		for _, s := range steps {
			if !s.parallel {
				continue
			}
			select {
			case builds <- s:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	return g.Wait()
}

// buildStep runs one index build and removes it from the journal, in one
// transaction: a build is either done and gone from the journal or neither.
// Each build is serial (max_parallel_maintenance_workers = 0): the
// parallelism is across builds, which also covers the trigram index that
// PostgreSQL cannot build in parallel itself.
func buildStep(ctx context.Context, pool *pgxpool.Pool, s step) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("error starting an index build: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	for _, stmt := range []string{
		"SET LOCAL statement_timeout = 0",
		"SET LOCAL maintenance_work_mem = '256MB'",
		"SET LOCAL max_parallel_maintenance_workers = 0",
		s.sql,
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("error finishing bulk load (%s): %w", stmt, err)
		}
	}
	if _, err := tx.Exec(ctx, "DELETE FROM seed_rebuild WHERE step = $1", s.n); err != nil {
		return fmt.Errorf("error journaling an index build: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("error committing an index build: %w", err)
	}
	return nil
}
