// Package seed bulk-loads demo data (users with roles and group memberships)
// with COPY, fast enough for a million users on a small machine. It serves
// `usergraph seed`, the embedded default's first start, and the benchmarks.
package seed

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/schollz/progressbar/v3"

	"github.com/usergraph/usergraph/model"
)

// Options says how much to load.
type Options struct {
	// Users to add. Required.
	Users int
	// Roles to ensure exist (the first three are admin, manager, member).
	// Defaults to 10.
	Roles int
	// Groups to ensure exist. Defaults to Users/500, between 10 and 2,000.
	Groups int
	// MaxRolesPerUser: each user gets 1 to this many roles. Defaults to 3.
	MaxRolesPerUser int
	// MaxGroupsPerUser: each user joins 0 to this many groups. Defaults to 5.
	MaxGroupsPerUser int
	// Progress, when set, shows a progress bar there.
	Progress io.Writer
	// Seed makes the data reproducible. Defaults to 1.
	Seed uint64
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// RebuildWorkers is the number of connections rebuilding indexes after
	// a bulk load. Defaults to the number of CPUs (FinishOptions.Workers).
	RebuildWorkers int
}

func (o Options) withDefaults() Options {
	if o.Roles == 0 {
		o.Roles = 10
	}
	if o.Groups == 0 {
		o.Groups = min(max(o.Users/500, 10), 2000)
	}
	if o.MaxRolesPerUser == 0 {
		o.MaxRolesPerUser = 3
	}
	if o.MaxGroupsPerUser == 0 {
		o.MaxGroupsPerUser = 5
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Stats reports what a run loaded.
type Stats struct {
	Users, UserRoles, Memberships int
	// Duration is the whole run; Copy the COPY phase; Rebuild the index and
	// foreign key rebuild after a bulk load.
	Duration, Copy, Rebuild time.Duration
}

var extraRoles = []string{"support", "billing", "auditor", "developer", "analyst", "sales", "marketing", "operations", "security", "design"}

// Run loads opt.Users new users after any already present (emails and
// usernames are numbered from the current count, so runs add up), plus any
// missing roles and groups, in one transaction. A bulk load (from
// bulkThreshold users) loads into bare tables and commits, then rebuilds the
// indexes and keys on several connections at once (Finish).
func Run(ctx context.Context, pool *pgxpool.Pool, opt Options) (Stats, error) {
	opt = opt.withDefaults()
	start := time.Now()
	if opt.Users < 0 {
		return Stats{}, fmt.Errorf("seed: users must not be negative")
	}
	finish := FinishOptions{Workers: opt.RebuildWorkers, Progress: opt.Progress}
	// An earlier bulk load interrupted before its rebuild ended left the
	// rest in the journal: the tables must be whole before they are
	// stripped again, or counted.
	if _, err := Finish(ctx, pool, finish); err != nil {
		return Stats{}, err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("error starting seed transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	// A bulk load legitimately runs longer than the pool's statement_timeout.
	if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
		return Stats{}, fmt.Errorf("error lifting statement timeout for seed: %w", err)
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", seedLock)); err != nil {
		return Stats{}, fmt.Errorf("error locking for seed: %w", err)
	}
	var offset int
	var pending bool
	if err := tx.QueryRow(ctx, "SELECT (SELECT count(*) FROM users), EXISTS (SELECT 1 FROM seed_rebuild)").Scan(&offset, &pending); err != nil {
		return Stats{}, fmt.Errorf("error counting users: %w", err)
	}
	if pending {
		return Stats{}, ErrRebuildPending
	}
	now := opt.Now()
	roleIDs, err := ensureRoles(ctx, tx, opt.Roles, now)
	if err != nil {
		return Stats{}, err
	}
	groupIDs, err := ensureGroups(ctx, tx, opt.Groups, now)
	if err != nil {
		return Stats{}, err
	}

	var bar *progressbar.ProgressBar
	if opt.Progress != nil {
		bar = progressbar.NewOptions(opt.Users, progressbar.OptionSetWriter(opt.Progress),
			progressbar.OptionSetDescription("seeding users"), progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString("users"), progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(opt.Progress) }))
	}
	// A large load is much faster into bare tables: building each index
	// once at the end beats updating it a million times, and re-adding a
	// foreign key checks all rows in one join instead of one lookup per row.
	bulk := opt.Users >= bulkThreshold
	if bulk {
		if err := stripForBulkLoad(ctx, tx); err != nil {
			return Stats{}, err
		}
	}
	rng := rand.New(rand.NewPCG(opt.Seed, uint64(offset)))
	st := Stats{Users: opt.Users}
	copyStart := time.Now()
	// The next chunk is generated while PostgreSQL ingests this one: the
	// two take comparable time, one core each.
	const chunkSize = 50_000
	chunks := make(chan chunk, 1)
	genCtx, stopGen := context.WithCancel(ctx)
	defer stopGen()
	go func() {
		defer close(chunks)
		for done := 0; done < opt.Users; done += chunkSize {
			c := generate(rng, offset+done, min(chunkSize, opt.Users-done), signups{now: now, n: opt.Users, done: done}, roleIDs, groupIDs, opt)
			select {
			case chunks <- c:
			case <-genCtx.Done():
				return
			}
		}
	}()
	for c := range chunks {
		if err := c.copyTo(ctx, tx); err != nil {
			return Stats{}, err
		}
		st.UserRoles += len(c.userRoles)
		st.Memberships += len(c.members)
		if bar != nil {
			_ = bar.Add(len(c.users))
		}
	}
	st.Copy = time.Since(copyStart)
	if err := tx.Commit(ctx); err != nil {
		return Stats{}, fmt.Errorf("error committing seed: %w", err)
	}
	if bulk {
		rebuildStart := time.Now()
		if bar != nil {
			fmt.Fprintln(opt.Progress, "rebuilding indexes and foreign keys...")
		}
		if _, err := Finish(ctx, pool, finish); err != nil {
			return Stats{}, err
		}
		st.Rebuild = time.Since(rebuildStart)
	}
	if _, err := pool.Exec(ctx, "ANALYZE users, user_roles, group_members, roles, groups"); err != nil {
		return Stats{}, fmt.Errorf("error analyzing seeded tables: %w", err)
	}
	st.Duration = time.Since(start)
	return st, nil
}

// bulkThreshold is the load size from which indexes and foreign keys are
// dropped during the load and rebuilt after it.
const bulkThreshold = 50_000

func ensureRoles(ctx context.Context, tx pgx.Tx, n int, now time.Time) ([]uuid.UUID, error) {
	for i := 0; i < n; i++ {
		name, desc, perms := "", "", []string{}
		if i < len(model.BuiltinRoles) {
			b := model.BuiltinRoles[i]
			name, desc, perms = b.Name, b.Description, b.Permissions
		} else if j := i - len(model.BuiltinRoles); j < len(extraRoles) {
			name = extraRoles[j]
		} else {
			name = fmt.Sprintf("role-%d", i+1)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO roles (id, name, description, permissions, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING`, uuid.Must(uuid.NewV7()), name, desc, perms, now); err != nil {
			return nil, fmt.Errorf("error creating role %s: %w", name, err)
		}
	}
	// Seeded users get only ordinary roles: never admin or manager.
	return ids(ctx, tx, "SELECT id FROM roles WHERE name NOT IN ('admin', 'manager') ORDER BY name LIMIT $1", n)
}

func ensureGroups(ctx context.Context, tx pgx.Tx, n int, now time.Time) ([]uuid.UUID, error) {
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{uuid.Must(uuid.NewV7()), fmt.Sprintf("%s %04d", groupWords[i%len(groupWords)], i+1),
			"Seeded group", now, now}
	}
	if _, err := tx.Exec(ctx, "CREATE TEMP TABLE seed_groups (LIKE groups INCLUDING DEFAULTS) ON COMMIT DROP"); err != nil {
		return nil, fmt.Errorf("error creating group staging table: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"seed_groups"}, []string{"id", "name", "description", "created_at", "updated_at"},
		pgx.CopyFromRows(rows)); err != nil {
		return nil, fmt.Errorf("error copying groups: %w", err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO groups SELECT * FROM seed_groups ON CONFLICT DO NOTHING"); err != nil {
		return nil, fmt.Errorf("error inserting groups: %w", err)
	}
	return ids(ctx, tx, "SELECT id FROM groups ORDER BY name LIMIT $1", n)
}

func ids(ctx context.Context, tx pgx.Tx, q string, n int) ([]uuid.UUID, error) {
	rows, err := tx.Query(ctx, q, n)
	if err != nil {
		return nil, fmt.Errorf("error reading ids: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("error reading ids: %w", err)
	}
	return out, nil
}

// chunk is n users' rows, with their roles and memberships, ready to COPY.
type chunk struct{ users, userRoles, members [][]any }

// signups spreads a load's sign-up times over the two years before now, in
// the order the users are written: a users table grows by appending the
// newest sign-up, so its creation order is its physical order (and its
// UUIDv7 ids' order). Random times would scatter each page of a listing by
// creation over the whole heap, which no table in service looks like.
type signups struct {
	now  time.Time
	n    int // users in the load
	done int // users written before this chunk
}

const signupSpan = 2 * 365 * 24 * time.Hour

// at returns the sign-up time of the load's k-th user of the chunk: its
// slot of the span, at a random point within it.
func (s signups) at(rng *rand.Rand, k int) time.Time {
	slot := signupSpan / time.Duration(s.n)
	return s.now.Add(-signupSpan + slot*time.Duration(s.done+k) + time.Duration(rng.Int64N(int64(max(slot, 1)))))
}

// generate makes the rows of n users numbered from first.
func generate(rng *rand.Rand, first, n int, times signups, roleIDs, groupIDs []uuid.UUID, opt Options) chunk {
	users := make([][]any, 0, n)
	var userRoles, members [][]any
	for i := first; i < first+n; i++ {
		fn, ln := firstNames[rng.IntN(len(firstNames))], lastNames[rng.IntN(len(lastNames))]
		handle := strings.ToLower(fn + "." + ln + fmt.Sprint(i+1))
		created := times.at(rng, i-first)
		id := uuid.Must(uuid.NewV7())
		status := "ACTIVE"
		switch p := rng.IntN(100); {
		case p < 5:
			status = "PENDING"
		case p < 8:
			status = "SUSPENDED"
		case p < 10:
			status = "DEACTIVATED"
		}
		var verified any
		if status != "PENDING" && rng.IntN(10) < 8 {
			verified = created.Add(time.Hour)
		}
		uid := [16]byte(id) // binary uuid: pgx would otherwise go through the text form
		users = append(users, []any{uid, handle + "@example.com", handle, fn + " " + ln, status, verified, created, created})
		for _, k := range pick(rng, len(roleIDs), 1+rng.IntN(opt.MaxRolesPerUser)) {
			userRoles = append(userRoles, []any{uid, [16]byte(roleIDs[k]), created})
		}
		for _, k := range pick(rng, len(groupIDs), rng.IntN(opt.MaxGroupsPerUser+1)) {
			role := "MEMBER"
			if rng.IntN(20) == 0 {
				role = "ADMIN"
			}
			members = append(members, []any{[16]byte(groupIDs[k]), uid, role, created})
		}
	}
	return chunk{users: users, userRoles: userRoles, members: members}
}

// copyTo COPYs the chunk's rows in tx.
func (c chunk) copyTo(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"users"},
		[]string{"id", "email", "username", "display_name", "status", "email_verified_at", "created_at", "updated_at"},
		pgx.CopyFromRows(c.users)); err != nil {
		return fmt.Errorf("error copying users: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"user_roles"}, []string{"user_id", "role_id", "assigned_at"},
		pgx.CopyFromRows(c.userRoles)); err != nil {
		return fmt.Errorf("error copying user roles: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"group_members"}, []string{"group_id", "user_id", "role", "joined_at"},
		pgx.CopyFromRows(c.members)); err != nil {
		return fmt.Errorf("error copying group members: %w", err)
	}
	return nil
}

// pick returns k distinct indexes below n.
func pick(rng *rand.Rand, n, k int) []int {
	k = min(k, n)
	out := make([]int, 0, k)
	for len(out) < k {
		c := rng.IntN(n)
		dup := false
		for _, o := range out {
			dup = dup || o == c
		}
		if !dup {
			out = append(out, c)
		}
	}
	return out
}

var (
	firstNames = []string{"Ada", "Alan", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances", "Edsger",
		"Radia", "Donald", "Hedy", "John", "Katherine", "Tim", "Sophie", "Guido", "Anita", "Bjarne", "Karen", "Niklaus",
		"Shafi", "Leslie", "Mary", "Vint", "Lynn", "Rob", "Jean", "Robert"}
	lastNames = []string{"Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson", "Allen",
		"Dijkstra", "Perlman", "Knuth", "Lamarr", "Backus", "Johnson", "Berners-Lee", "Wilson", "Rossum", "Borg",
		"Stroustrup", "Jones", "Wirth", "Goldwasser", "Lamport", "Keller", "Cerf", "Conway", "Pike", "Sammet", "Tarjan"}
	groupWords = []string{"Platform", "Growth", "Payments", "Search", "Mobile", "Infra", "Data", "Design", "Support", "Security"}
)
