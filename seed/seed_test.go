package seed_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/usergraph/usergraph/db/dbtest"
	"github.com/usergraph/usergraph/seed"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// schemaShape lists the indexes, constraints and enabled triggers of the
// seeded tables: a bulk load drops some of them and must put back exactly
// what it found.
func schemaShape(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	return dbtest.Strings(t, pool, `
		SELECT 'index ' || indexdef FROM pg_indexes WHERE tablename IN ('users', 'user_roles', 'group_members')
		UNION ALL
		SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
			WHERE conrelid IN ('users'::regclass, 'user_roles'::regclass, 'group_members'::regclass)
		UNION ALL
		SELECT 'trigger ' || tgname || ' ' || tgenabled::text FROM pg_trigger
			WHERE NOT tgisinternal AND tgrelid IN ('users'::regclass, 'user_roles'::regclass, 'group_members'::regclass)
		ORDER BY 1`)
}

func TestSeed_BulkLoadRestoresSchemaAndCounters(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	ctx := context.Background()
	before := schemaShape(t, d.Pool)

	// A small load (incremental path), then a bulk one on top of it.
	if _, err := seed.Run(ctx, d.Pool, seed.Options{Users: 300, Groups: 20}); err != nil {
		t.Fatal(err)
	}
	st, err := seed.Run(ctx, d.Pool, seed.Options{Users: 60_000, Groups: 20})
	if err != nil {
		t.Fatal(err)
	}
	if st.Users != 60_000 || st.UserRoles < 60_000 || st.Memberships == 0 {
		t.Fatalf("implausible stats: %+v", st)
	}

	after := schemaShape(t, d.Pool)
	if len(before) != len(after) {
		t.Fatalf("schema changed:\nbefore %v\nafter  %v", before, after)
	}
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("schema changed: %q became %q", before[i], after[i])
		}
	}

	var users, badGroups, badRoles int
	err = d.Pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM users),
		(SELECT count(*) FROM groups g WHERE member_count <> (SELECT count(*) FROM group_members gm
			JOIN users u ON u.id = gm.user_id AND u.deleted_at IS NULL WHERE gm.group_id = g.id)),
		(SELECT count(*) FROM roles r WHERE user_count <> (SELECT count(*) FROM user_roles ur
			JOIN users u ON u.id = ur.user_id AND u.deleted_at IS NULL WHERE ur.role_id = r.id))`).Scan(&users, &badGroups, &badRoles)
	if err != nil {
		t.Fatal(err)
	}
	if users != 60_300 || badGroups != 0 || badRoles != 0 {
		t.Fatalf("users %d (want 60300), groups with a wrong member_count %d, roles with a wrong user_count %d", users, badGroups, badRoles)
	}

	// The counter triggers are live again: a soft delete moves the counts.
	var groupID string
	var count0, count1 int64
	if err := d.Pool.QueryRow(ctx, `SELECT g.id::text, g.member_count FROM groups g WHERE member_count > 0 LIMIT 1`).Scan(&groupID, &count0); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Pool.Exec(ctx, `UPDATE users SET deleted_at = now() WHERE id = (SELECT user_id FROM group_members WHERE group_id = $1 LIMIT 1)`, groupID); err != nil {
		t.Fatal(err)
	}
	if err := d.Pool.QueryRow(ctx, `SELECT member_count FROM groups WHERE id = $1`, groupID).Scan(&count1); err != nil {
		t.Fatal(err)
	}
	if count1 != count0-1 {
		t.Fatalf("member_count after a soft delete: %d, want %d", count1, count0-1)
	}
}

// cancelOnBuild cancels a bulk load as soon as its first index build is
// reported, so that the load is committed and its rebuild is not.
type cancelOnBuild struct{ cancel context.CancelFunc }

func (c cancelOnBuild) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "CREATE ") {
		c.cancel()
	}
	return len(p), nil
}

func TestSeed_AnInterruptedRebuildIsFinishedByTheNextStart(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	ctx := context.Background()
	before := schemaShape(t, d.Pool)

	loadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err := seed.Run(loadCtx, d.Pool, seed.Options{Users: 60_000, Groups: 20, Progress: cancelOnBuild{cancel}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a load cancelled during its rebuild: %v, want context.Canceled", err)
	}
	var users, pending int
	if err := d.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM seed_rebuild)`).Scan(&users, &pending); err != nil {
		t.Fatal(err)
	}
	if users != 60_000 || pending == 0 {
		t.Fatalf("after the interruption: %d users (want the load's 60000 committed), %d rebuild steps pending (want some)", users, pending)
	}
	if mid := schemaShape(t, d.Pool); len(mid) >= len(before) {
		t.Fatalf("the interrupted rebuild left %d indexes, constraints and triggers, want fewer than %d", len(mid), len(before))
	}

	// What a server start does.
	done, err := seed.Finish(ctx, d.Pool, seed.FinishOptions{Workers: 2})
	if err != nil || !done {
		t.Fatalf("Finish: done %v, err %v; want it to finish the rebuild", done, err)
	}
	after := schemaShape(t, d.Pool)
	if strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Fatalf("schema after the resumed rebuild:\n%s\nwant:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
	var badGroups, badRoles int
	err = d.Pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM seed_rebuild),
		(SELECT count(*) FROM groups g WHERE member_count <> (SELECT count(*) FROM group_members gm WHERE gm.group_id = g.id)),
		(SELECT count(*) FROM roles r WHERE user_count <> (SELECT count(*) FROM user_roles ur WHERE ur.role_id = r.id))`).Scan(&pending, &badGroups, &badRoles)
	if err != nil {
		t.Fatal(err)
	}
	if pending != 0 || badGroups != 0 || badRoles != 0 {
		t.Fatalf("after Finish: %d steps pending, %d groups and %d roles with wrong counts; want none", pending, badGroups, badRoles)
	}
	if done, err := seed.Finish(ctx, d.Pool, seed.FinishOptions{}); err != nil || done {
		t.Fatalf("a second Finish: done %v, err %v; want nothing to do", done, err)
	}
	// And the next load starts from the whole tables.
	if _, err := seed.Run(ctx, d.Pool, seed.Options{Users: 100, Groups: 20}); err != nil {
		t.Fatal(err)
	}
}

// With a pool of one connection, which the holding transaction takes, the
// index builds run in that transaction instead of waiting for a connection
// that never frees up.
func TestSeed_ABulkLoadOnOneConnection(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, dbtest.URL(t)+"&pool_max_conns=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if n := pool.Config().MaxConns; n != 1 {
		t.Fatalf("the pool holds %d connections, want 1", n)
	}
	before := schemaShape(t, pool)
	if _, err := seed.Run(ctx, pool, seed.Options{Users: 60_000, Groups: 20, RebuildWorkers: 2}); err != nil {
		t.Fatalf("a bulk load on one connection: %v", err)
	}
	if after := schemaShape(t, pool); strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Fatalf("schema after the load:\n%s\nwant:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
}

// Seeded users signed up in the order they were written, as a table in
// service grows: listing them by creation walks the ids and the heap in
// order. Each load spans the two years before it, so the only step back in
// time is where the second load begins.
func TestSeed_UsersAreCreatedInTheOrderTheyAreWritten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t).Pool
	for range 2 {
		if _, err := seed.Run(ctx, pool, seed.Options{Users: 3000, Groups: 5}); err != nil {
			t.Fatal(err)
		}
	}
	got := dbtest.Strings(t, pool, `
		SELECT count(*) FILTER (WHERE created_at < prev) || ' steps back; spans 700 days: ' ||
		       (max(created_at) - min(created_at) > interval '700 days')::text
		FROM (SELECT created_at, lag(created_at) OVER (ORDER BY id) AS prev FROM users) AS u`)
	if want := "1 steps back; spans 700 days: true"; len(got) != 1 || got[0] != want {
		t.Fatalf("sign-up times in id order: %v, want %q", got, want)
	}
	// The first page by creation lies on a few heap pages, not on 50.
	pages := dbtest.Strings(t, pool, `
		SELECT count(DISTINCT (ctid::text::point)[0])::text
		FROM (SELECT ctid FROM users ORDER BY created_at, id LIMIT 50) AS u`)
	if n, err := strconv.Atoi(pages[0]); err != nil || n > 3 {
		t.Fatalf("the first 50 users by creation lie on %v heap pages, want at most 3", pages)
	}
}
