package resolver_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/usergraph/usergraph/model"
)

// These tests page through every connection of the API and compare what they
// collect with the order PostgreSQL itself gives, so that collation decides
// the expected order of text, not Go's byte order.

// pageInfo is a connection's PageInfo.
type pageInfo struct {
	HasNextPage     bool
	HasPreviousPage bool
	StartCursor     *string
	EndCursor       *string
}

// connection is a page of any connection, decoded down to its nodes' ids.
type connection struct {
	Edges []struct {
		Cursor string
		Role   string // GroupMemberEdge and UserGroupEdge only
		Node   struct{ ID string }
	}
	PageInfo   pageInfo
	TotalCount int
}

func (c connection) ids() []string {
	ids := make([]string, len(c.Edges))
	for i, e := range c.Edges {
		ids[i] = e.Node.ID
	}
	return ids
}

const connectionFields = `edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount`

// The queries below all declare the four page arguments and name the
// connection c, either at the top (c: users) or inside a parent p, so that
// one fetcher serves them all.
const (
	usersPageQuery = `query($first: Int, $after: String, $last: Int, $before: String, $filter: UserFilter, $orderBy: UserOrder) {
		c: users(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) { ` + connectionFields + ` } }`
	rolesPageQuery = `query($first: Int, $after: String, $last: Int, $before: String, $orderBy: RoleOrder) {
		c: roles(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy) { ` + connectionFields + ` } }`
	groupsPageQuery = `query($first: Int, $after: String, $last: Int, $before: String, $orderBy: GroupOrder) {
		c: groups(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy) { ` + connectionFields + ` } }`
	userGroupsPageQuery = `query($id: ID!, $first: Int, $after: String, $last: Int, $before: String, $orderBy: GroupOrder) {
		p: user(id: $id) { c: groups(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy) {
			edges { cursor role node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount } } }`
	groupMembersPageQuery = `query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
		p: group(id: $id) { c: members(first: $first, after: $after, last: $last, before: $before) {
			edges { cursor role node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount } } }`
	roleUsersPageQuery = `query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
		p: role(id: $id) { c: users(first: $first, after: $after, last: $last, before: $before) { ` + connectionFields + ` } } }`
)

// pageReq asks for one page: the first n after cursor, or the last n before it.
type pageReq struct {
	n        int
	backward bool
	cursor   *string
}

func (p pageReq) vars() map[string]any {
	v := map[string]any{}
	if p.backward {
		v["last"] = p.n
		if p.cursor != nil {
			v["before"] = *p.cursor
		}
	} else {
		v["first"] = p.n
		if p.cursor != nil {
			v["after"] = *p.cursor
		}
	}
	return v
}

// fetchPage reads one page of some connection.
type fetchPage func(t *testing.T, req pageReq) connection

// pagesOf returns a fetcher for one of the page queries above; vars carries
// its other variables (id, filter, orderBy).
func pagesOf(b *bundle, query string, vars map[string]any) fetchPage {
	return func(t *testing.T, req pageReq) connection {
		t.Helper()
		v := req.vars()
		maps.Copy(v, vars)
		var out struct {
			C *connection
			P *struct{ C connection }
		}
		b.mustDo(t, query, v, &out)
		switch {
		case out.C != nil:
			return *out.C
		case out.P != nil:
			return out.P.C
		}
		t.Fatalf("the response holds no connection (is the parent missing?)")
		return connection{}
	}
}

// walkAll pages through a whole connection n at a time, forward from the
// start or backward from the end, and returns the ids in list order. On the
// way it checks every page against the Relay rules.
func walkAll(t *testing.T, fetch fetchPage, n int, backward bool) []string {
	t.Helper()
	var ids []string
	var cursor *string
	for page := 0; page < 1000; page++ {
		c := fetch(t, pageReq{n: n, backward: backward, cursor: cursor})
		got := c.ids()
		if len(got) > n {
			t.Fatalf("page %d holds %d items, more than the %d asked for", page, len(got), n)
		}
		if page > 0 && len(got) == 0 {
			t.Fatalf("page %d is empty although the page before said there was more", page)
		}
		checkPageCursors(t, c)
		more, behind := c.PageInfo.HasNextPage, c.PageInfo.HasPreviousPage
		if backward {
			more, behind = c.PageInfo.HasPreviousPage, c.PageInfo.HasNextPage
		}
		if behind != (cursor != nil) {
			t.Fatalf("page %d (backward=%v): the flag for the pages already seen is %v, want %v", page, backward, behind, cursor != nil)
		}
		if backward {
			ids = append(got, ids...)
			cursor = c.PageInfo.StartCursor
		} else {
			ids = append(ids, got...)
			cursor = c.PageInfo.EndCursor
		}
		if !more {
			return ids
		}
	}
	t.Fatal("still more pages after 1000")
	return nil
}

// checkPageCursors checks that startCursor and endCursor are the cursors of
// the first and last edge, and null on an empty page.
func checkPageCursors(t *testing.T, c connection) {
	t.Helper()
	if len(c.Edges) == 0 {
		if c.PageInfo.StartCursor != nil || c.PageInfo.EndCursor != nil {
			t.Fatalf("empty page with cursors %v / %v, want null", c.PageInfo.StartCursor, c.PageInfo.EndCursor)
		}
		return
	}
	first, last := c.Edges[0].Cursor, c.Edges[len(c.Edges)-1].Cursor
	if c.PageInfo.StartCursor == nil || *c.PageInfo.StartCursor != first || c.PageInfo.EndCursor == nil || *c.PageInfo.EndCursor != last {
		t.Fatalf("startCursor/endCursor are not the first and last edge's cursors: %+v", c.PageInfo)
	}
}

// assertSequence fails unless got is exactly want, naming what was repeated
// and what was skipped.
func assertSequence(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	var repeated, skipped []string
	for id, n := range seen {
		if n > 1 {
			repeated = append(repeated, id)
		}
	}
	for _, id := range want {
		if seen[id] == 0 {
			skipped = append(skipped, id)
		}
	}
	t.Fatalf("%s: got %d ids, want %d in this order; repeated %v; skipped %v\n got: %v\nwant: %v",
		what, len(got), len(want), repeated, skipped, got, want)
}

// fixture runs fixture SQL directly on the test's database.
func (b *bundle) fixture(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := b.db.Pool.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("fixture SQL: %v\n%s", err, sql)
	}
}

// sqlIDs runs a query selecting id::text and returns the global IDs of kind
// in the order PostgreSQL gave them.
func (b *bundle) sqlIDs(t *testing.T, kind model.Kind, sql string, args ...any) []string {
	t.Helper()
	rows, err := b.db.Pool.Query(t.Context(), sql, args...)
	if err != nil {
		t.Fatalf("query: %v\n%s", err, sql)
	}
	raw, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("query: %v\n%s", err, sql)
	}
	ids := make([]string, len(raw))
	for i, s := range raw {
		ids[i] = model.GlobalID(kind, uuid.MustParse(s))
	}
	return ids
}

// dbID returns the uuid inside a global ID, for fixture SQL.
func dbID(t *testing.T, gid string) uuid.UUID {
	t.Helper()
	_, id, err := model.ParseGlobalID("id", gid)
	if err != nil {
		t.Fatalf("not a global ID %q: %v", gid, err)
	}
	return id
}

// insertUsers inserts n users numbered 1..n; created_at is minute i of
// 2024-01-01 unless the fixture changes it.
func (b *bundle) insertUsers(t *testing.T, n int) {
	t.Helper()
	b.fixture(t, `INSERT INTO users (id, email, username, display_name, created_at, updated_at)
		SELECT gen_random_uuid(), 'user' || i || '@example.com', 'user' || i, 'User ' || i,
		       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute', now()
		FROM generate_series(1, $1::int) AS i`, n)
}

// liveUsersByCreation is the default order of the users list.
const liveUsersByCreation = `SELECT id::text FROM users WHERE deleted_at IS NULL ORDER BY created_at, id`

func TestConnections_EmptyListsHaveNoEdgesNoCursorsAndZeroTotal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var out struct{ Users, Roles, Groups connection }
	b.mustDo(t, `{ users { `+connectionFields+` } roles { `+connectionFields+` } groups { `+connectionFields+` } }`, nil, &out)
	for name, c := range map[string]connection{"users": out.Users, "roles": out.Roles, "groups": out.Groups} {
		if c.Edges == nil || len(c.Edges) != 0 {
			t.Errorf("%s: edges = %v, want an empty list", name, c.Edges)
		}
		if c.PageInfo != (pageInfo{}) {
			t.Errorf("%s: pageInfo = %+v, want no next or previous page and null cursors", name, c.PageInfo)
		}
		if c.TotalCount != 0 {
			t.Errorf("%s: totalCount = %d, want 0", name, c.TotalCount)
		}
	}
}

func TestUsers_PagesEndExactlyAtAPageBoundary(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.insertUsers(t, 40)
	all := b.sqlIDs(t, model.KindUser, liveUsersByCreation)
	fetch := pagesOf(b, usersPageQuery, nil)

	first := fetch(t, pageReq{n: 20})
	assertSequence(t, "first page", first.ids(), all[:20])
	if !first.PageInfo.HasNextPage || first.PageInfo.HasPreviousPage || first.TotalCount != 40 {
		t.Fatalf("first page: %+v totalCount %d, want a next page, no previous page, 40 in all", first.PageInfo, first.TotalCount)
	}

	second := fetch(t, pageReq{n: 20, cursor: first.PageInfo.EndCursor})
	assertSequence(t, "second page", second.ids(), all[20:])
	if second.PageInfo.HasNextPage || !second.PageInfo.HasPreviousPage {
		t.Fatalf("second page: %+v, want no next page (it ends at the last user) and a previous one", second.PageInfo)
	}

	// before alone pages backward by the default page size.
	var back struct{ Users connection }
	b.mustDo(t, `query($before: String!) { users(before: $before) { `+connectionFields+` } }`,
		map[string]any{"before": *second.PageInfo.EndCursor}, &back)
	assertSequence(t, "the default page before the last user", back.Users.ids(), all[19:39])
	if !back.Users.PageInfo.HasPreviousPage || !back.Users.PageInfo.HasNextPage {
		t.Fatalf("page before the last user: %+v, want users both before and after it", back.Users.PageInfo)
	}

	third := fetch(t, pageReq{n: 20, cursor: second.PageInfo.EndCursor})
	if len(third.Edges) != 0 || third.PageInfo.HasNextPage || third.PageInfo.StartCursor != nil || third.PageInfo.EndCursor != nil {
		t.Fatalf("page after the last: %d edges, %+v; want none, no next page, null cursors", len(third.Edges), third.PageInfo)
	}
	if third.TotalCount != 40 {
		t.Fatalf("page after the last: totalCount = %d, want 40", third.TotalCount)
	}
}

func TestUsers_EveryOrderPagesLikePostgreSQLSortsBothWays(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Display names collide and differ only in case and accents; usernames mix
	// case; creation times tie in groups: whatever the collation makes of
	// them, the API must page in the order PostgreSQL sorts.
	b.fixture(t, `INSERT INTO users (id, email, username, display_name, created_at, updated_at)
		SELECT gen_random_uuid(),
		       substr(md5(i::text), 1, 6) || '.' || i || '@example.com',
		       CASE WHEN i % 3 = 0 THEN upper(substr(md5((i * 31)::text), 1, 5)) ELSE substr(md5((i * 31)::text), 1, 5) END || '_' || i,
		       (ARRAY['Émile', 'emile', 'Zoë', 'zoe', 'a b', 'ab', 'Ab', '_x', 'Mary-Ann', 'maryann', '', 'Ünal'])[1 + i % 12],
		       timestamptz '2024-03-01 12:00:00+00' + (i % 7) * interval '1 minute' + (i % 2) * interval '1 microsecond',
		       now()
		FROM generate_series(1, 33) AS i`)
	// Soft-deleted users never show up in any order.
	b.fixture(t, `UPDATE users SET deleted_at = now() WHERE username LIKE '%\_5' OR username LIKE '%\_17' OR username LIKE '%\_29'`)

	columns := map[string]string{"CREATED_AT": "created_at", "EMAIL": "email", "USERNAME": "username", "DISPLAY_NAME": "display_name"}
	for field, column := range columns {
		for _, dir := range []string{"ASC", "DESC"} {
			t.Run(field+"_"+dir, func(t *testing.T) {
				t.Parallel()
				want := b.sqlIDs(t, model.KindUser, fmt.Sprintf(
					"SELECT id::text FROM users WHERE deleted_at IS NULL ORDER BY %s %s, id %s", column, dir, dir))
				if len(want) != 30 {
					t.Fatalf("fixture: %d live users, want 30", len(want))
				}
				fetch := pagesOf(b, usersPageQuery, map[string]any{"orderBy": map[string]any{"field": field, "direction": dir}})
				assertSequence(t, "forward, 7 at a time", walkAll(t, fetch, 7, false), want)
				assertSequence(t, "backward from the end, 7 at a time", walkAll(t, fetch, 7, true), want)
			})
		}
	}
}

func TestUsers_TiesOnTheSortKeyAreNeitherSkippedNorRepeated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// 25 users share a display name; 20 others share one creation instant to
	// the microsecond. Only the id tells them apart.
	b.fixture(t, `INSERT INTO users (id, email, username, display_name, created_at, updated_at)
		SELECT gen_random_uuid(), 'same' || i || '@example.com', 'same' || i, 'Same Name',
		       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second', now()
		FROM generate_series(1, 25) AS i`)
	b.fixture(t, `INSERT INTO users (id, email, username, display_name, created_at, updated_at)
		SELECT gen_random_uuid(), 'twin' || i || '@example.com', 'twin' || i, 'Twin ' || i,
		       timestamptz '2024-06-01 08:30:00.123456+00', now()
		FROM generate_series(1, 20) AS i`)

	for _, field := range []string{"DISPLAY_NAME", "CREATED_AT"} {
		for _, dir := range []string{"ASC", "DESC"} {
			t.Run(field+"_"+dir, func(t *testing.T) {
				t.Parallel()
				column := map[string]string{"DISPLAY_NAME": "display_name", "CREATED_AT": "created_at"}[field]
				want := b.sqlIDs(t, model.KindUser, fmt.Sprintf(
					"SELECT id::text FROM users WHERE deleted_at IS NULL ORDER BY %s %s, id %s", column, dir, dir))
				fetch := pagesOf(b, usersPageQuery, map[string]any{"orderBy": map[string]any{"field": field, "direction": dir}})
				assertSequence(t, "forward, 4 at a time", walkAll(t, fetch, 4, false), want)
				assertSequence(t, "backward, 4 at a time", walkAll(t, fetch, 4, true), want)
			})
		}
	}
}

func TestUsers_DeletingUsersBetweenPagesSkipsNoSurvivor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.insertUsers(t, 12)
	all := b.sqlIDs(t, model.KindUser, liveUsersByCreation)
	fetch := pagesOf(b, usersPageQuery, nil)

	first := fetch(t, pageReq{n: 4})
	assertSequence(t, "first page", first.ids(), all[:4])
	// Delete the very row the cursor points at, one row of the next page and
	// one already seen.
	for _, i := range []int{3, 5, 1} {
		b.mustDo(t, `mutation($id: ID!) { deleteUser(input: {id: $id}) { deletedUserId } }`, map[string]any{"id": all[i]}, nil)
	}

	var rest []string
	cursor := first.PageInfo.EndCursor
	for {
		c := fetch(t, pageReq{n: 4, cursor: cursor})
		rest = append(rest, c.ids()...)
		if !c.PageInfo.HasNextPage {
			break
		}
		cursor = c.PageInfo.EndCursor
	}
	want := []string{all[4], all[6], all[7], all[8], all[9], all[10], all[11]}
	assertSequence(t, "pages after the deletions", rest, want)
}

func TestUsers_InsertingUsersBetweenPagesSkipsNothingAndRepeatsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.insertUsers(t, 10) // created at minutes 1..10
	all := b.sqlIDs(t, model.KindUser, liveUsersByCreation)
	fetch := pagesOf(b, usersPageQuery, map[string]any{"orderBy": map[string]any{"field": "CREATED_AT", "direction": "ASC"}})

	first := fetch(t, pageReq{n: 4})
	assertSequence(t, "first page", first.ids(), all[:4])
	// One user lands among the pages already read, one among those to come,
	// one exactly at the cursor's instant, and one (through the API) at the end.
	b.fixture(t, `INSERT INTO users (id, email, username, created_at) VALUES
		(gen_random_uuid(), 'early@example.com', 'early', timestamptz '2024-01-01 00:02:30+00'),
		(gen_random_uuid(), 'middle@example.com', 'middle', timestamptz '2024-01-01 00:06:30+00')`)
	early := b.sqlIDs(t, model.KindUser, `SELECT id::text FROM users WHERE username = 'early'`)[0]
	middle := b.sqlIDs(t, model.KindUser, `SELECT id::text FROM users WHERE username = 'middle'`)[0]
	late := b.createUser(t, "late@example.com", "late")

	rest := walkRest(t, fetch, 3, first.PageInfo.EndCursor)
	want := []string{all[4], all[5], middle, all[6], all[7], all[8], all[9], late}
	assertSequence(t, "pages after the inserts", rest, want)
	if slices.Contains(rest, early) {
		t.Fatalf("a user inserted before the cursor showed up after it")
	}
}

// walkRest pages forward from cursor to the end, n at a time.
func walkRest(t *testing.T, fetch fetchPage, n int, cursor *string) []string {
	t.Helper()
	var ids []string
	for range 1000 {
		c := fetch(t, pageReq{n: n, cursor: cursor})
		ids = append(ids, c.ids()...)
		if !c.PageInfo.HasNextPage {
			return ids
		}
		cursor = c.PageInfo.EndCursor
	}
	t.Fatal("still more pages after 1000")
	return nil
}

func TestUsers_FiltersCombineWithPaginationAndTotalCount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	role := createRole(t, b, "auditor")
	group := createGroup(t, b, "night-shift")
	b.fixture(t, `INSERT INTO users (id, email, username, display_name, status, email_verified_at, created_at, updated_at)
		SELECT gen_random_uuid(), 'member' || i || '@example.com', 'member' || i,
		       CASE WHEN i % 2 = 0 THEN 'Team Falcon ' || i ELSE 'Team Heron ' || i END,
		       (ARRAY['ACTIVE', 'PENDING', 'SUSPENDED', 'DEACTIVATED'])[1 + i % 4],
		       CASE WHEN i % 3 = 0 THEN timestamptz '2024-02-01 00:00:00+00' END,
		       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 day', now()
		FROM generate_series(1, 26) AS i`)
	b.fixture(t, `INSERT INTO user_roles (user_id, role_id) SELECT id, $1 FROM users WHERE substr(username, 7)::int % 2 = 0`, dbID(t, role))
	b.fixture(t, `INSERT INTO group_members (group_id, user_id) SELECT $1, id FROM users WHERE substr(username, 7)::int % 3 <> 1`, dbID(t, group))
	// Deleted users match every filter below and must count for none.
	b.fixture(t, `UPDATE users SET deleted_at = now() WHERE username IN ('member12', 'member18')`)

	after, before := "2024-01-05T00:00:00Z", "2024-01-21T12:00:00Z"
	cases := []struct {
		name   string
		filter map[string]any
		where  string // over users u, with $1 = role uuid and $2 = group uuid
	}{
		{"status", map[string]any{"status": []string{"PENDING", "DEACTIVATED"}}, "u.status IN ('PENDING', 'DEACTIVATED')"},
		{"role", map[string]any{"role": role}, "EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = u.id AND ur.role_id = $1)"},
		{"group", map[string]any{"group": group}, "EXISTS (SELECT 1 FROM group_members gm WHERE gm.user_id = u.id AND gm.group_id = $2)"},
		{"search ignores case", map[string]any{"search": "FALcon"}, "u.display_name LIKE 'Team Falcon%'"},
		{"search in email", map[string]any{"search": "member2"}, "u.email LIKE 'member2%'"},
		{"created between", map[string]any{"createdAfter": after, "createdBefore": before},
			"u.created_at > '2024-01-05T00:00:00Z' AND u.created_at < '2024-01-21T12:00:00Z'"},
		{"email verified", map[string]any{"emailVerified": true}, "u.email_verified_at IS NOT NULL"},
		{"email not verified", map[string]any{"emailVerified": false}, "u.email_verified_at IS NULL"},
		{"all at once", map[string]any{
			"status": []string{"ACTIVE", "SUSPENDED"}, "role": role, "group": group, "search": "team",
			"createdAfter": after, "emailVerified": false,
		}, "u.status IN ('ACTIVE', 'SUSPENDED') AND u.email_verified_at IS NULL AND u.created_at > '2024-01-05T00:00:00Z'" +
			" AND EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = u.id AND ur.role_id = $1)" +
			" AND EXISTS (SELECT 1 FROM group_members gm WHERE gm.user_id = u.id AND gm.group_id = $2)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := b.sqlIDs(t, model.KindUser, `SELECT u.id::text FROM users u WHERE u.deleted_at IS NULL AND (`+tc.where+
				`) AND $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL ORDER BY u.created_at, u.id`, dbID(t, role), dbID(t, group))
			if len(want) == 0 || len(want) >= 24 {
				t.Fatalf("fixture: the filter matches %d of 24 live users; it should match some but not all", len(want))
			}
			fetch := pagesOf(b, usersPageQuery, map[string]any{"filter": tc.filter})
			var got []string
			var cursor *string
			for {
				c := fetch(t, pageReq{n: 3, cursor: cursor})
				if c.TotalCount != len(want) {
					t.Fatalf("totalCount = %d, want %d (the users matching the filter)", c.TotalCount, len(want))
				}
				got = append(got, c.ids()...)
				if !c.PageInfo.HasNextPage {
					break
				}
				cursor = c.PageInfo.EndCursor
			}
			assertSequence(t, "filtered pages", got, want)
		})
	}
}

func TestUsers_SearchMatchesLiterallyAndIgnoresCaseBeyondASCII(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fixture(t, `INSERT INTO users (id, email, username, display_name) VALUES
		(gen_random_uuid(), 'one@example.com', 'lit_one', 'Fifty%Off'),
		(gen_random_uuid(), 'two@example.com', 'litxone', 'FiftyXOff'),
		(gen_random_uuid(), 'three@example.com', 'emile', 'ÉMILE Zoë')`)
	byName := func(username string) string {
		return b.sqlIDs(t, model.KindUser, `SELECT id::text FROM users WHERE username = $1`, username)[0]
	}
	for search, want := range map[string][]string{
		"lit_one": {byName("lit_one")}, // _ is not a wildcard
		"TY%OF":   {byName("lit_one")}, // nor is %
		"émile":   {byName("emile")},
		"ZOË":     {byName("emile")},
		"Émile z": {byName("emile")},
		"%%%":     {},
	} {
		var out struct{ Users connection }
		b.mustDo(t, `query($s: String!) { users(filter: {search: $s}) { `+connectionFields+` } }`, map[string]any{"s": search}, &out)
		if got := out.Users.ids(); !slices.Equal(got, want) || out.Users.TotalCount != len(want) {
			t.Errorf("search %q found %v (totalCount %d), want %v", search, got, out.Users.TotalCount, want)
		}
	}
}

func TestNestedConnections_TiesOnJoinAndGrantTimesAreNeitherSkippedNorRepeated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	group := createGroup(t, b, "batch")
	role := createRole(t, b, "batch")
	b.insertUsers(t, 11)
	// A bulk load gives every row the same instant; only the user id orders them.
	b.fixture(t, `INSERT INTO group_members (group_id, user_id, joined_at) SELECT $1, id, timestamptz '2024-05-05 05:05:05.555555+00' FROM users`, dbID(t, group))
	b.fixture(t, `INSERT INTO user_roles (role_id, user_id, assigned_at) SELECT $1, id, timestamptz '2024-05-05 05:05:05.555555+00' FROM users`, dbID(t, role))

	members := b.sqlIDs(t, model.KindUser, `SELECT user_id::text FROM group_members ORDER BY joined_at, user_id`)
	fetch := pagesOf(b, groupMembersPageQuery, map[string]any{"id": group})
	assertSequence(t, "members forward", walkAll(t, fetch, 3, false), members)
	assertSequence(t, "members backward", walkAll(t, fetch, 3, true), members)

	holders := b.sqlIDs(t, model.KindUser, `SELECT user_id::text FROM user_roles ORDER BY assigned_at, user_id`)
	fetch = pagesOf(b, roleUsersPageQuery, map[string]any{"id": role})
	assertSequence(t, "holders forward", walkAll(t, fetch, 4, false), holders)
	assertSequence(t, "holders backward", walkAll(t, fetch, 4, true), holders)
}

func TestUserGroups_PageEachUsersGroupsSeparately(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ada := b.createUser(t, "ada@example.com", "ada")
	bob := b.createUser(t, "bob@example.com", "bob")
	b.fixture(t, `INSERT INTO groups (id, name, created_at)
		SELECT gen_random_uuid(), n, timestamptz '2024-01-01 00:00:00+00' + (o % 3) * interval '1 hour'
		FROM unnest($1::text[]) WITH ORDINALITY AS g(n, o)`, []string{"delta", "Alpha", "charlie", "bravo", "Écho"})
	b.fixture(t, `INSERT INTO group_members (group_id, user_id, role) SELECT id, $1, 'ADMIN' FROM groups`, dbID(t, ada))
	b.fixture(t, `INSERT INTO group_members (group_id, user_id) SELECT id, $1 FROM groups WHERE name IN ('delta', 'bravo', 'Écho')`, dbID(t, bob))

	// Both users' first pages come from one query: each has its own page.
	var firstPages struct {
		Users struct {
			Nodes []struct {
				ID     string
				Groups connection
			}
		}
	}
	b.mustDo(t, `{ users(orderBy: {field: EMAIL, direction: ASC}) { nodes { id groups(first: 2) {
		edges { cursor role node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount } } } }`, nil, &firstPages)
	if n := len(firstPages.Users.Nodes); n != 2 {
		t.Fatalf("got %d users, want 2", n)
	}
	for _, u := range firstPages.Users.Nodes {
		want := b.sqlIDs(t, model.KindGroup, `SELECT g.id::text FROM group_members gm JOIN groups g ON g.id = gm.group_id
			WHERE gm.user_id = $1 ORDER BY g.name, g.id`, dbID(t, u.ID))
		assertSequence(t, "first page of groups of "+u.ID, u.Groups.ids(), want[:2])
		if u.Groups.TotalCount != len(want) || !u.Groups.PageInfo.HasNextPage {
			t.Fatalf("groups of %s: totalCount %d, %+v; want %d and a next page", u.ID, u.Groups.TotalCount, u.Groups.PageInfo, len(want))
		}
	}
	if role := firstPages.Users.Nodes[0].Groups.Edges[0].Role; role != "ADMIN" {
		t.Fatalf("ada's role in her first group = %q, want ADMIN", role)
	}

	for name, user := range map[string]string{"ada": ada, "bob": bob} {
		for _, order := range []struct{ field, dir, sql string }{
			{"NAME", "ASC", "g.name ASC, g.id ASC"},
			{"NAME", "DESC", "g.name DESC, g.id DESC"},
			{"CREATED_AT", "ASC", "g.created_at ASC, g.id ASC"},
			{"CREATED_AT", "DESC", "g.created_at DESC, g.id DESC"},
		} {
			t.Run(name+"_"+order.field+"_"+order.dir, func(t *testing.T) {
				t.Parallel()
				want := b.sqlIDs(t, model.KindGroup, `SELECT g.id::text FROM group_members gm JOIN groups g ON g.id = gm.group_id
					WHERE gm.user_id = $1 ORDER BY `+order.sql, dbID(t, user))
				fetch := pagesOf(b, userGroupsPageQuery, map[string]any{"id": user, "orderBy": map[string]any{"field": order.field, "direction": order.dir}})
				assertSequence(t, "forward", walkAll(t, fetch, 2, false), want)
				assertSequence(t, "backward", walkAll(t, fetch, 2, true), want)
			})
		}
	}
}

func TestGroupMembers_PageInTheOrderTheyJoined(t *testing.T) {
	t.Parallel()
	b, _ := setupClock(t)
	group := createGroup(t, b, "readers")
	var joinOrder []string
	for _, name := range []string{"mia", "abe", "zed", "kim", "lou", "bea", "ian"} {
		joinOrder = append(joinOrder, b.createUser(t, name+"@example.com", name))
	}
	slices.Reverse(joinOrder) // joining order differs from creation, name and id order
	for _, u := range joinOrder {
		addMember(t, b, group, u, "MEMBER")
	}

	fetch := pagesOf(b, groupMembersPageQuery, map[string]any{"id": group})
	assertSequence(t, "members forward", walkAll(t, fetch, 3, false), joinOrder)
	assertSequence(t, "members backward", walkAll(t, fetch, 3, true), joinOrder)
	if c := fetch(t, pageReq{n: 3}); c.TotalCount != 7 || c.Edges[0].Role != "MEMBER" {
		t.Fatalf("totalCount = %d, first role %q; want 7 and MEMBER", c.TotalCount, c.Edges[0].Role)
	}
}

func TestRoleUsers_PageInTheOrderTheRoleWasGranted(t *testing.T) {
	t.Parallel()
	b, _ := setupClock(t)
	role := createRole(t, b, "editor")
	var grantOrder []string
	for _, name := range []string{"mia", "abe", "zed", "kim", "lou"} {
		grantOrder = append(grantOrder, b.createUser(t, name+"@example.com", name))
	}
	grantOrder = []string{grantOrder[2], grantOrder[0], grantOrder[4], grantOrder[1], grantOrder[3]}
	for _, u := range grantOrder {
		assignRole(t, b, u, role)
	}

	fetch := pagesOf(b, roleUsersPageQuery, map[string]any{"id": role})
	assertSequence(t, "holders forward", walkAll(t, fetch, 2, false), grantOrder)
	assertSequence(t, "holders backward", walkAll(t, fetch, 2, true), grantOrder)
	if c := fetch(t, pageReq{n: 2}); c.TotalCount != 5 {
		t.Fatalf("totalCount = %d, want 5", c.TotalCount)
	}
}

func TestCounts_FollowSoftDeleteRestoreAndRelationChanges(t *testing.T) {
	t.Parallel()
	b := setup(t)
	group := createGroup(t, b, "ops")
	role := createRole(t, b, "oncall")
	u1 := b.createUser(t, "u1@example.com", "user1")
	u2 := b.createUser(t, "u2@example.com", "user2")
	u3 := b.createUser(t, "u3@example.com", "user3")
	for _, u := range []string{u1, u2, u3} {
		addMember(t, b, group, u, "MEMBER")
		assignRole(t, b, u, role)
	}

	type counts struct{ memberCount, members, userCount, holders, groupsOfU2 int }
	read := func(t *testing.T) counts {
		t.Helper()
		var out struct {
			Group struct {
				MemberCount int
				Members     struct{ TotalCount int }
			}
			Role struct {
				UserCount int
				Users     struct{ TotalCount int }
			}
			User *struct{ Groups struct{ TotalCount int } }
		}
		b.mustDo(t, `query($g: ID!, $r: ID!, $u: ID!) {
			group(id: $g) { memberCount members { totalCount } }
			role(id: $r) { userCount users { totalCount } }
			user(id: $u) { groups { totalCount } } }`, map[string]any{"g": group, "r": role, "u": u2}, &out)
		c := counts{out.Group.MemberCount, out.Group.Members.TotalCount, out.Role.UserCount, out.Role.Users.TotalCount, -1}
		if out.User != nil {
			c.groupsOfU2 = out.User.Groups.TotalCount
		}
		return c
	}
	step := func(t *testing.T, what, mutation, userID string, want counts) {
		t.Helper()
		if mutation != "" {
			b.mustDo(t, mutation, map[string]any{"g": group, "r": role, "u": userID}, nil)
		}
		if got := read(t); got != want {
			t.Fatalf("after %s: %+v, want %+v", what, got, want)
		}
	}

	step(t, "adding three users", "", "", counts{3, 3, 3, 3, 1})
	step(t, "deleting user 2", `mutation($u: ID!) { deleteUser(input: {id: $u}) { deletedUserId } }`, u2, counts{2, 2, 2, 2, -1})
	step(t, "restoring user 2", `mutation($u: ID!) { restoreUser(input: {id: $u}) { user { id } } }`, u2, counts{3, 3, 3, 3, 1})
	step(t, "removing user 1 from the group", `mutation($g: ID!, $u: ID!) { removeGroupMember(input: {groupId: $g, userId: $u}) { group { id } } }`, u1, counts{2, 2, 3, 3, 1})
	step(t, "revoking user 1's role", `mutation($r: ID!, $u: ID!) { revokeRole(input: {userId: $u, roleId: $r}) { role { id } } }`, u1, counts{2, 2, 2, 2, 1})
	step(t, "adding user 1 back", `mutation($g: ID!, $u: ID!) { addGroupMember(input: {groupId: $g, userId: $u}) { group { id } } }`, u1, counts{3, 3, 2, 2, 1})
	step(t, "granting user 1 the role again", `mutation($r: ID!, $u: ID!) { assignRole(input: {userId: $u, roleId: $r}) { role { id } } }`, u1, counts{3, 3, 3, 3, 1})
	step(t, "removing user 2 from the group", `mutation($g: ID!, $u: ID!) { removeGroupMember(input: {groupId: $g, userId: $u}) { group { id } } }`, u2, counts{2, 2, 3, 3, 0})
}

func TestRolesAndGroups_OrderByNameAndCreationBothWays(t *testing.T) {
	t.Parallel()
	b := setup(t)
	names := []string{"Admin", "auditor", "Écrivain", "editor", "Zeta", "zulu", "a b", "ab", "_system", "Ops-1", "ops2"}
	for _, table := range []string{"roles", "groups"} {
		// Creation times tie in threes so the id must break ties.
		b.fixture(t, `INSERT INTO `+table+` (id, name, created_at)
			SELECT gen_random_uuid(), n, timestamptz '2024-01-01 00:00:00+00' + (o % 3) * interval '1 hour'
			FROM unnest($1::text[]) WITH ORDINALITY AS t(n, o)`, names)
	}
	lists := []struct {
		table, query string
		kind         model.Kind
	}{
		{"roles", rolesPageQuery, model.KindRole},
		{"groups", groupsPageQuery, model.KindGroup},
	}
	for _, list := range lists {
		for _, field := range []string{"NAME", "CREATED_AT"} {
			for _, dir := range []string{"ASC", "DESC"} {
				t.Run(list.table+"_"+field+"_"+dir, func(t *testing.T) {
					t.Parallel()
					column := map[string]string{"NAME": "name", "CREATED_AT": "created_at"}[field]
					want := b.sqlIDs(t, list.kind, fmt.Sprintf("SELECT id::text FROM %s ORDER BY %s %s, id %s", list.table, column, dir, dir))
					fetch := pagesOf(b, list.query, map[string]any{"orderBy": map[string]any{"field": field, "direction": dir}})
					assertSequence(t, "forward", walkAll(t, fetch, 4, false), want)
					assertSequence(t, "backward", walkAll(t, fetch, 4, true), want)
					if c := fetch(t, pageReq{n: 4}); c.TotalCount != len(names) {
						t.Fatalf("totalCount = %d, want %d", c.TotalCount, len(names))
					}
				})
			}
		}
	}
	// Without orderBy, both lists are by name, ascending.
	for _, list := range lists {
		want := b.sqlIDs(t, list.kind, fmt.Sprintf("SELECT id::text FROM %s ORDER BY name, id", list.table))
		assertSequence(t, list.table+" in the default order", walkAll(t, pagesOf(b, list.query, nil), 5, false), want)
	}
}
