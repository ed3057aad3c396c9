package jobs_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/db/dbtest"
	"github.com/usergraph/usergraph/jobs"
	"github.com/usergraph/usergraph/model"
	"github.com/usergraph/usergraph/seed"
)

// nopSender accepts every email.
type nopSender struct{}

func (nopSender) Send(context.Context, jobs.Email) error { return nil }

// newWorkers starts workers over d sending through sender (nopSender when
// nil), stopped when the test ends.
func newWorkers(t *testing.T, d *db.DB, sender jobs.Sender, cfg jobs.Config) *jobs.Jobs {
	t.Helper()
	cfg.Workers = true
	cfg.PublicURL, _ = url.Parse("https://users.example.com")
	if cfg.ExportDir == "" {
		cfg.ExportDir = t.TempDir()
	}
	if sender == nil {
		sender = nopSender{}
	}
	work, err := jobs.New(d, sender, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := work.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = work.Stop(ctx)
	})
	return work
}

// waitFinished waits for a job to finish and returns its final state.
func waitFinished(t *testing.T, d *db.DB, jobID int64, timeout time.Duration) string {
	t.Helper()
	var state string
	waitUntil(t, fmt.Sprintf("job %d to finish", jobID), timeout, func() bool {
		_ = d.Pool.QueryRow(context.Background(), "SELECT state FROM river_job WHERE id = $1 AND finalized_at IS NOT NULL", jobID).Scan(&state)
		return state != ""
	})
	return state
}

// An export of 100,000 users streams them to the file: every user once, in
// creation order, with the heap growing by a small, fixed amount rather
// than with the number of users.
func TestExport_100kUsersStreamInBoundedMemory(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	ctx := context.Background()
	const users = 100_000
	if _, err := seed.Run(ctx, d.Pool, seed.Options{Users: users}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	work := newWorkers(t, d, nil, jobs.Config{ExportDir: dir})

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
		}
	}()
	var export *db.Export
	var jobID int64
	if err := d.InTx(ctx, func(tx *db.Tx) error {
		job, e, err := work.ExportTx(ctx, tx, uuid.New(), db.ExportUsers, "CSV", model.UserFilter{}, time.Now())
		export, jobID = e, job.ID
		return err
	}); err != nil {
		t.Fatal(err)
	}
	state := waitFinished(t, d, jobID, 3*time.Minute)
	close(stop)
	sampler.Wait()
	if state != "completed" {
		t.Fatalf("export job ended %s", state)
	}
	growth := int64(peak) - int64(base.HeapAlloc)
	t.Logf("heap: %d MiB before, peak growth %.1f MiB while exporting %d users", base.HeapAlloc>>20, float64(growth)/(1<<20), users)
	// 100,000 users held in memory take well over 30 MiB; a stream needs a
	// buffer and one row.
	if growth > 24<<20 {
		t.Errorf("heap grew by %d MiB during the export: users are being held in memory", growth>>20)
	}

	path, _ := work.ExportPath(export)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	header, err := r.Read()
	if err != nil || strings.Join(header, ",") != "id,email,username,display_name,status,email_verified_at,last_login_at,created_at,roles" {
		t.Fatalf("header %v (%v)", header, err)
	}
	seen := make(map[string]bool, users)
	var first []string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = append([]string(nil), rec...)
		}
		if seen[rec[1]] {
			t.Fatalf("%s exported twice", rec[1])
		}
		seen[rec[1]] = true
	}
	if len(seen) != users {
		t.Fatalf("exported %d users, want %d", len(seen), users)
	}
	var oldest string
	if err := d.Pool.QueryRow(ctx, "SELECT email FROM users ORDER BY created_at, id LIMIT 1").Scan(&oldest); err != nil {
		t.Fatal(err)
	}
	if first[1] != oldest || first[8] == "" {
		t.Errorf("first row %v: want the oldest user %s with their roles", first, oldest)
	}
	var rows, total int64
	if err := d.Pool.QueryRow(ctx, "SELECT rows_done, rows_total FROM exports WHERE id = $1", export.ID).Scan(&rows, &total); err != nil || rows != users || total != users {
		t.Errorf("export record: %d of %d rows (%v)", rows, total, err)
	}
}

// failingReader returns an error after n bytes: a worker dying mid-import.
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("worker died")
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// An import interrupted after its first batch resumes where the committed
// batch ended: every row goes in exactly once.
func TestImport_ResumesAfterTheLastCommittedBatch(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	ctx := context.Background()
	work, err := jobs.New(d, nopSender{}, jobs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("email,username,display_name\n")
	const rows = 2500
	for i := range rows {
		fmt.Fprintf(&b, "user%d@example.com,user%d,User %d\n", i, i, i)
	}
	data := b.String()
	var importID uuid.UUID
	if err := d.InTx(ctx, func(tx *db.Tx) error {
		_, _, err := work.ImportTx(ctx, tx, uuid.New(), "resume-test", data, "", false, time.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.Pool.QueryRow(ctx, "SELECT id FROM user_imports").Scan(&importID); err != nil {
		t.Fatal(err)
	}

	// The first attempt dies in the second batch.
	_, err = jobs.ImportCSV(ctx, d, nil, importID, 0, &failingReader{r: strings.NewReader(data), n: len(data) * 6 / 10}, nil)
	if err == nil || !strings.Contains(err.Error(), "worker died") {
		t.Fatalf("the interrupted import: %v, want the reader's error", err)
	}
	var done, users int
	if err := d.Pool.QueryRow(ctx, "SELECT rows_done, (SELECT count(*) FROM users) FROM user_imports").Scan(&done, &users); err != nil {
		t.Fatal(err)
	}
	if done != 1000 || users != 1000 {
		t.Fatalf("after the interruption: position %d, users %d; want the first batch of 1000 committed", done, users)
	}
	// A stale attempt that still thinks it is at row 0 cannot apply a batch.
	if _, err := d.ImportBatch(ctx, importID, 0, 1000, nil, nil, time.Now(), nil); !errors.Is(err, db.ErrImportMoved) {
		t.Fatalf("a stale batch: %v, want ErrImportMoved", err)
	}

	total, err := jobs.ImportCSV(ctx, d, nil, importID, done, strings.NewReader(data), nil)
	if err != nil || total != rows {
		t.Fatalf("resumed import: %d rows, %v", total, err)
	}
	var inserted, failed, distinct int
	if err := d.Pool.QueryRow(ctx, "SELECT inserted, failed, (SELECT count(DISTINCT email) FROM users) FROM user_imports").Scan(&inserted, &failed, &distinct); err != nil {
		t.Fatal(err)
	}
	if inserted != rows || failed != 0 || distinct != rows {
		t.Errorf("inserted %d, failed %d, users %d; want %d, 0, %d", inserted, failed, distinct, rows, rows)
	}
}

// The maintenance job keeps audit partitions ahead (moving rows stranded in
// the default partition into their month), drops months past retention,
// and purges dead tokens, old sessions and accounts past their grace
// period.
func TestMaintenance_PartitionsRetentionAndPurges(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	ctx := context.Background()
	now := time.Now().UTC()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := d.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// A row five months ahead lands in the default partition.
	future := time.Date(now.Year(), now.Month()+5, 10, 0, 0, 0, 0, time.UTC)
	exec("INSERT INTO audit_events (id, occurred_at, action) VALUES (gen_random_uuid(), $1, 'future')", future)
	// An old month past retention.
	exec("CREATE TABLE audit_events_2020_01 PARTITION OF audit_events FOR VALUES FROM ('2020-01-01') TO ('2020-02-01')")
	exec("INSERT INTO audit_events (id, occurred_at, action) VALUES (gen_random_uuid(), '2020-01-15', 'old')")
	// A user past their grace period, one inside it, and dead rows.
	var gone, kept uuid.UUID
	if err := d.Pool.QueryRow(ctx, `INSERT INTO users (id, email, username, deleted_at, purge_after)
		VALUES (gen_random_uuid(), 'gone@example.com', 'gone', now() - interval '40 days', now() - interval '10 days') RETURNING id`).Scan(&gone); err != nil {
		t.Fatal(err)
	}
	if err := d.Pool.QueryRow(ctx, `INSERT INTO users (id, email, username, deleted_at, purge_after)
		VALUES (gen_random_uuid(), 'kept@example.com', 'kept', now(), now() + interval '20 days') RETURNING id`).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	exec(`INSERT INTO user_tokens (token_hash, user_id, purpose, created_at, expires_at)
		VALUES ('\x01', $1, 'RESET_PASSWORD', now() - interval '3 days', now() - interval '2 days'),
		       ('\x02', $1, 'RESET_PASSWORD', now(), now() + interval '1 hour')`, kept)
	exec(`INSERT INTO sessions (id, user_id, token_hash, created_at, last_seen_at, expires_at)
		VALUES (gen_random_uuid(), $1, '\x03', now() - interval '60 days', now() - interval '60 days', now() - interval '45 days'),
		       (gen_random_uuid(), $1, '\x04', now(), now(), now() + interval '1 hour')`, kept)

	// Partitions further ahead than usual, to give the stranded row a home.
	if err := d.Maintenance().EnsureAuditPartitions(ctx, 6); err != nil {
		t.Fatal(err)
	}
	rep, err := jobs.Maintain(ctx, d, jobs.Config{AuditRetention: 365 * 24 * time.Hour, ExportDir: t.TempDir()}, now)
	if err != nil {
		t.Fatal(err)
	}
	var home string
	if err := d.Pool.QueryRow(ctx, "SELECT tableoid::regclass::text FROM audit_events WHERE action = 'future'").Scan(&home); err != nil {
		t.Fatal(err)
	}
	if want := "audit_events_" + future.Format("2006_01"); home != want {
		t.Errorf("the stranded row lives in %s, want %s", home, want)
	}
	var stranded int
	if err := d.Pool.QueryRow(ctx, "SELECT count(*) FROM audit_events_default").Scan(&stranded); err != nil || stranded != 0 {
		t.Errorf("default partition rows: %d (%v)", stranded, err)
	}
	if len(rep.DroppedPartitions) != 1 || rep.DroppedPartitions[0] != "audit_events_2020_01" {
		t.Errorf("dropped %v, want [audit_events_2020_01]", rep.DroppedPartitions)
	}
	var old int
	if err := d.Pool.QueryRow(ctx, "SELECT count(*) FROM audit_events WHERE action = 'old'").Scan(&old); err != nil || old != 0 {
		t.Errorf("events past retention: %d (%v)", old, err)
	}
	var next string
	if err := d.Pool.QueryRow(ctx, "SELECT coalesce(to_regclass($1)::text, '')",
		"audit_events_"+time.Date(now.Year(), now.Month()+3, 1, 0, 0, 0, 0, time.UTC).Format("2006_01")).Scan(&next); err != nil || next == "" {
		t.Errorf("the partition three months ahead is missing (%v)", err)
	}
	if rep.PurgedTokens != 1 || rep.PurgedSessions != 1 || rep.PurgedUsers != 1 {
		t.Errorf("purged tokens %d, sessions %d, users %d; want 1 each", rep.PurgedTokens, rep.PurgedSessions, rep.PurgedUsers)
	}
	var users int
	if err := d.Pool.QueryRow(ctx, "SELECT count(*) FROM users WHERE id IN ($1, $2)", gone, kept).Scan(&users); err != nil || users != 1 {
		t.Errorf("users left: %d (%v), want only the one inside its grace period", users, err)
	}
	var purgeEvents int
	if err := d.Pool.QueryRow(ctx, "SELECT count(*) FROM audit_events WHERE action = 'user.purge' AND target_id = $1", gone).Scan(&purgeEvents); err != nil || purgeEvents != 1 {
		t.Errorf("user.purge events: %d (%v)", purgeEvents, err)
	}

	// A query for one month reads one partition.
	var plan strings.Builder
	rows, err := d.Pool.Query(ctx, "EXPLAIN SELECT * FROM audit_events WHERE occurred_at >= $1 AND occurred_at < $2",
		future.AddDate(0, 0, -9), future.AddDate(0, 0, 5))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		_ = rows.Scan(&line)
		plan.WriteString(line + "\n")
	}
	rows.Close()
	scanned := map[string]bool{}
	for _, m := range regexp.MustCompile(`on (audit_events_(?:\d{4}_\d{2}|default))\s`).FindAllStringSubmatch(plan.String(), -1) {
		scanned[m[1]] = true
	}
	if n := len(scanned); n != 1 {
		t.Errorf("a one-month query scans %d partitions:\n%s", n, plan.String())
	}
}
