package resolver_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/model"
)

// Every failure a client can cause must come back as a typed error in
// errors[].extensions.code, with HTTP 200 and nothing of the SQL, the driver
// or the Go runtime in it.

// leakMarkers are fragments of SQL, driver and runtime text that must never
// reach a client, compared case-insensitively.
var leakMarkers = []string{"select ", "insert ", "sqlstate", "pgx", "pq:", "gorm", "goroutine", "runtime error", "constraint"}

// wantError checks that r failed with exactly one error of code, naming
// field in extensions.field unless field is empty, answered with HTTP 200 and
// free of internals.
func wantError(t *testing.T, r response, code, field string) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("HTTP status %d, want 200: %s", r.Status, r.Raw)
	}
	if got := r.errorCode(t); got != code {
		t.Fatalf("extensions.code = %q, want %q: %s", got, code, r.Raw)
	}
	if field != "" {
		if got, _ := r.Errors[0].Extensions["field"].(string); got != field {
			t.Fatalf("extensions.field = %q, want %q: %s", got, field, r.Raw)
		}
	}
	errs, err := json.Marshal(r.Errors)
	if err != nil {
		t.Fatal(err)
	}
	lower := strings.ToLower(string(errs))
	for _, m := range leakMarkers {
		if strings.Contains(lower, m) {
			t.Fatalf("the error shows internals (%q): %s", m, errs)
		}
	}
}

// newGID returns a well-formed global ID of kind that names nothing.
func newGID(kind model.Kind) string { return model.GlobalID(kind, uuid.New()) }

// pageSizeFixture is a user in a group and holding a role, so that every
// connection, nested ones too, has a parent to hang from.
func pageSizeFixture(t *testing.T) (*bundle, map[string]any) {
	t.Helper()
	b := setup(t)
	user := b.createUser(t, "pager@example.com", "pager")
	group := createGroup(t, b, "pagers")
	role := createRole(t, b, "paging")
	addMember(t, b, group, user, "MEMBER")
	assignRole(t, b, user, role)
	return b, map[string]any{"u": user, "g": group, "r": role}
}

// Each connection's query, with %s standing for its arguments.
var (
	topConnections = map[string]string{
		"users":  `query { users(%s) { totalCount } }`,
		"roles":  `query { roles(%s) { totalCount } }`,
		"groups": `query { groups(%s) { totalCount } }`,
	}
	nestedConnections = map[string]string{
		"User.groups":   `query($u: ID!) { user(id: $u) { groups(%s) { totalCount } } }`,
		"Group.members": `query($g: ID!) { group(id: $g) { members(%s) { totalCount } } }`,
		"Role.users":    `query($r: ID!) { role(id: $r) { users(%s) { totalCount } } }`,
	}
)

// negativePageSizes are page arguments that are out of range for being
// negative, with the argument the error must name.
var negativePageSizes = []struct{ args, field string }{
	{"first: -1", "first"},
	{"last: -1", "last"},
	{"first: -20", "first"},
	{"first: -1, last: 5", "first"},
}

func TestErrors_PageSizeOutOfRangeIsBadInputNamingTheArgument(t *testing.T) {
	t.Parallel()
	b, vars := pageSizeFixture(t)
	cases := []struct{ args, field string }{
		{"first: 101", "first"},
		{"last: 101", "last"},
		{"first: 1, last: 1", "first"},
	}
	connections := maps.Clone(topConnections)
	maps.Copy(connections, nestedConnections)
	for name, query := range connections {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				wantError(t, b.do(t, fmt.Sprintf(query, c.args), vars), "BAD_USER_INPUT", c.field)
			}
			if _, top := topConnections[name]; top {
				for _, c := range negativePageSizes {
					wantError(t, b.do(t, fmt.Sprintf(query, c.args), vars), "BAD_USER_INPUT", c.field)
				}
			}
			// The limits themselves are fine.
			for _, ok := range []string{"first: 100", "last: 100", "first: 0"} {
				b.mustDo(t, fmt.Sprintf(query, ok), vars, nil)
			}
		})
	}
}

func TestErrors_NegativePageSizeOnNestedConnectionsIsBadInput(t *testing.T) {
	t.Parallel()
	b, vars := pageSizeFixture(t)
	for name, query := range nestedConnections {
		for _, c := range negativePageSizes {
			r := b.do(t, fmt.Sprintf(query, c.args), vars)
			if len(r.Errors) == 0 {
				t.Errorf("%s(%s) was answered with a page instead of BAD_USER_INPUT: %s", name, c.args, r.Raw)
				continue
			}
			wantError(t, r, "BAD_USER_INPUT", c.field)
		}
	}
}

func TestErrors_BadCursorsAreBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u1 := b.createUser(t, "c1@example.com", "cursor1")
	u2 := b.createUser(t, "c2@example.com", "cursor2")
	group := createGroup(t, b, "cursors")
	role := createRole(t, b, "cursing")
	createRole(t, b, "other")
	for _, u := range []string{u1, u2} {
		addMember(t, b, group, u, "MEMBER")
		assignRole(t, b, u, role)
	}
	firstCursor := func(query string, vars map[string]any) string {
		t.Helper()
		c := pagesOf(b, query, vars)(t, pageReq{n: 1})
		if len(c.Edges) == 0 {
			t.Fatalf("fixture: no edge to take a cursor from in %s", query)
		}
		return c.Edges[0].Cursor
	}
	byEmail := map[string]any{"field": "EMAIL", "direction": "ASC"}
	usersCursor := firstCursor(usersPageQuery, nil)
	emailCursor := firstCursor(usersPageQuery, map[string]any{"orderBy": byEmail})
	rolesCursor := firstCursor(rolesPageQuery, nil)
	groupsCursor := firstCursor(groupsPageQuery, nil)
	userGroupsCursor := firstCursor(userGroupsPageQuery, map[string]any{"id": u1})
	membersCursor := firstCursor(groupMembersPageQuery, map[string]any{"id": group})
	holdersCursor := firstCursor(roleUsersPageQuery, map[string]any{"id": role})

	cases := []struct {
		name, query string
		vars        map[string]any
		arg         string // after or before
		cursor      string
	}{
		{"random string", usersPageQuery, nil, "after", "not-a-cursor"},
		{"random string as before", usersPageQuery, nil, "before", "bm90IGEgY3Vyc29y"},
		{"empty string", usersPageQuery, nil, "after", ""},
		{"not base64", usersPageQuery, nil, "after", "%%%%"},
		{"very long", usersPageQuery, nil, "after", strings.Repeat("A", 5000)},
		{"users by EMAIL cursor on users by CREATED_AT", usersPageQuery, nil, "after", emailCursor},
		{"users by CREATED_AT cursor on users by EMAIL", usersPageQuery, map[string]any{"orderBy": byEmail}, "before", usersCursor},
		{"roles cursor on users", usersPageQuery, nil, "after", rolesCursor},
		{"users cursor on roles", rolesPageQuery, nil, "after", usersCursor},
		{"roles by NAME cursor on roles by CREATED_AT", rolesPageQuery, map[string]any{"orderBy": map[string]any{"field": "CREATED_AT", "direction": "ASC"}}, "after", rolesCursor},
		{"roles cursor on groups", groupsPageQuery, nil, "after", rolesCursor},
		{"groups cursor on User.groups", userGroupsPageQuery, map[string]any{"id": u1}, "after", groupsCursor},
		{"User.groups cursor on groups", groupsPageQuery, nil, "before", userGroupsCursor},
		{"Role.users cursor on Group.members", groupMembersPageQuery, map[string]any{"id": group}, "after", holdersCursor},
		{"Group.members cursor on Role.users", roleUsersPageQuery, map[string]any{"id": role}, "after", membersCursor},
		{"users cursor on Role.users", roleUsersPageQuery, map[string]any{"id": role}, "before", usersCursor},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]any{c.arg: c.cursor}
			maps.Copy(vars, c.vars)
			if c.arg == "before" {
				vars["last"] = 1
			} else {
				vars["first"] = 1
			}
			wantError(t, b.do(t, c.query, vars), "BAD_USER_INPUT", c.arg)
		})
	}

	// No single-byte edit of a genuine cursor may be accepted: it would seek
	// wherever the edit points.
	t.Run("every single-byte edit", func(t *testing.T) {
		t.Parallel()
		raw, err := base64.RawURLEncoding.DecodeString(usersCursor)
		if err != nil {
			t.Fatalf("cursors are expected to be base64url: %v", err)
		}
		for i := range raw {
			edited := append([]byte(nil), raw...)
			edited[i] ^= 0x01
			tampered := base64.RawURLEncoding.EncodeToString(edited)
			r := b.do(t, usersPageQuery, map[string]any{"first": 1, "after": tampered})
			if len(r.Errors) == 0 {
				t.Fatalf("a cursor with byte %d flipped was accepted: %s", i, r.Raw)
			}
			wantError(t, r, "BAD_USER_INPUT", "after")
		}
	})
}

func TestErrors_MalformedOrWrongKindIDsAreBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	user := b.createUser(t, "ids@example.com", "ids")
	group := createGroup(t, b, "ids")
	role := createRole(t, b, "ids")
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

	cases := []struct {
		name, query string
		vars        map[string]any
		field       string
	}{
		{"garbage to user", `query($id: ID!) { user(id: $id) { id } }`, map[string]any{"id": "garbage!"}, "id"},
		{"empty to user", `query($id: ID!) { user(id: $id) { id } }`, map[string]any{"id": ""}, "id"},
		{"bad uuid to user", `query($id: ID!) { user(id: $id) { id } }`, map[string]any{"id": b64("User:not-a-uuid")}, "id"},
		{"unknown kind to node", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": b64("Widget:" + uuid.NewString())}, "id"},
		{"garbage to node", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": "???"}, "id"},
		{"Group ID to user", `query($id: ID!) { user(id: $id) { id } }`, map[string]any{"id": group}, "id"},
		{"User ID to role", `query($id: ID!) { role(id: $id) { id } }`, map[string]any{"id": user}, "id"},
		{"Role ID to group", `query($id: ID!) { group(id: $id) { id } }`, map[string]any{"id": role}, "id"},
		{"Group ID to updateUser", `mutation($id: ID!) { updateUser(input: {id: $id, displayName: "x"}) { user { id } } }`, map[string]any{"id": group}, "input.id"},
		{"Role ID as assignRole's user", `mutation($u: ID!, $r: ID!) { assignRole(input: {userId: $u, roleId: $r}) { user { id } } }`, map[string]any{"u": role, "r": role}, "input.userId"},
		{"User ID as addGroupMember's group", `mutation($g: ID!, $u: ID!) { addGroupMember(input: {groupId: $g, userId: $u}) { user { id } } }`, map[string]any{"g": user, "u": user}, "input.groupId"},
		{"garbage in nodes", `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": []string{user, "garbage"}}, "ids"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			wantError(t, b.do(t, c.query, c.vars), "BAD_USER_INPUT", c.field)
		})
	}
}

func TestLookups_UnknownButWellFormedIDsAreNullWithoutError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createUser(t, "someone@example.com", "someone")
	r := b.mustDo(t, `query($u: ID!, $r: ID!, $g: ID!) {
		user(id: $u) { id } role(id: $r) { id } group(id: $g) { id }
		nu: node(id: $u) { id } nr: node(id: $r) { id } ng: node(id: $g) { id }
		byEmail: user(email: "nobody@example.com") { id } byName: user(username: "nobody") { id } }`,
		map[string]any{"u": newGID(model.KindUser), "r": newGID(model.KindRole), "g": newGID(model.KindGroup)}, nil)
	var data map[string]any
	if err := json.Unmarshal(r.Data, &data); err != nil {
		t.Fatal(err)
	}
	for field, v := range data {
		if v != nil {
			t.Errorf("%s = %v, want null for an object that does not exist", field, v)
		}
	}
	if len(data) != 8 {
		t.Fatalf("got %d fields, want 8: %s", len(data), r.Raw)
	}
}

func TestNodes_ReturnsMixedKindsInOrderWithNullForUnknown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	user := b.createUser(t, "n@example.com", "noder")
	role := createRole(t, b, "noder")
	group := createGroup(t, b, "noders")
	ids := []string{group, newGID(model.KindUser), user, role, newGID(model.KindGroup), user}
	var out struct {
		Nodes []*struct {
			Typename    string `json:"__typename"`
			ID          string
			Email, Name string
		}
	}
	b.mustDo(t, `query($ids: [ID!]!) { nodes(ids: $ids) { __typename id ... on User { email } ... on Role { name } ... on Group { name } } }`,
		map[string]any{"ids": ids}, &out)
	want := []struct{ typename, email, name string }{
		{"Group", "", "noders"}, {}, {"User", "n@example.com", ""}, {"Role", "", "noder"}, {}, {"User", "n@example.com", ""},
	}
	if len(out.Nodes) != len(want) {
		t.Fatalf("got %d nodes, want %d", len(out.Nodes), len(want))
	}
	for i, n := range out.Nodes {
		w := want[i]
		switch {
		case w.typename == "" && n != nil:
			t.Errorf("nodes[%d] = %+v, want null (unknown ID)", i, n)
		case w.typename != "" && (n == nil || n.Typename != w.typename || n.ID != ids[i] || n.Email != w.email || n.Name != w.name):
			t.Errorf("nodes[%d] = %+v, want the %s %s with email %q, name %q", i, n, w.typename, ids[i], w.email, w.name)
		}
	}
}

func TestNodes_AcceptsAtMost100IDs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := make([]string, 101)
	for i := range ids {
		ids[i] = newGID(model.KindUser)
	}
	const q = `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`
	wantError(t, b.do(t, q, map[string]any{"ids": ids}), "BAD_USER_INPUT", "ids")

	var out struct{ Nodes []*struct{ ID string } }
	b.mustDo(t, q, map[string]any{"ids": ids[:100]}, &out)
	if len(out.Nodes) != 100 {
		t.Fatalf("100 unknown ids gave %d entries, want 100 nulls", len(out.Nodes))
	}
}

func TestUserLookup_TakesExactlyOneOfIDEmailUsername(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.createUser(t, "Grace.Hopper@Example.com", "GraceH")
	for _, q := range []string{
		`{ user { id } }`,
		`query($id: ID!) { user(id: $id, email: "grace.hopper@example.com") { id } }`,
		`{ user(email: "grace.hopper@example.com", username: "GraceH") { id } }`,
	} {
		wantError(t, b.do(t, q, map[string]any{"id": id}), "BAD_USER_INPUT", "")
	}

	// Email and username are looked up ignoring case.
	for _, args := range []string{
		`email: "GRACE.HOPPER@EXAMPLE.COM"`, `email: "grace.hopper@example.com"`,
		`username: "graceh"`, `username: "GRACEH"`, `username: "GraceH"`,
	} {
		var out struct{ User *struct{ ID string } }
		b.mustDo(t, `{ user(`+args+`) { id } }`, nil, &out)
		if out.User == nil || out.User.ID != id {
			t.Errorf("user(%s) = %+v, want %s", args, out.User, id)
		}
	}
}

func TestErrors_MutationsOnMissingThingsAreNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	user := b.createUser(t, "live@example.com", "live")
	deleted := b.createUser(t, "deleted@example.com", "deleted")
	role := createRole(t, b, "unheld")
	group := createGroup(t, b, "empty")
	b.mustDo(t, `mutation($id: ID!) { deleteUser(input: {id: $id}) { deletedUserId } }`, map[string]any{"id": deleted}, nil)
	noUser, noRole, noGroup := newGID(model.KindUser), newGID(model.KindRole), newGID(model.KindGroup)

	const (
		updateUser     = `mutation($id: ID!) { updateUser(input: {id: $id, displayName: "x"}) { user { id } } }`
		deactivate     = `mutation($id: ID!) { deactivateUser(input: {id: $id}) { user { id } } }`
		reactivate     = `mutation($id: ID!) { reactivateUser(input: {id: $id}) { user { id } } }`
		deleteUser     = `mutation($id: ID!) { deleteUser(input: {id: $id}) { deletedUserId } }`
		restoreUser    = `mutation($id: ID!) { restoreUser(input: {id: $id}) { user { id } } }`
		assign         = `mutation($u: ID!, $r: ID!) { assignRole(input: {userId: $u, roleId: $r}) { user { id } } }`
		revoke         = `mutation($u: ID!, $r: ID!) { revokeRole(input: {userId: $u, roleId: $r}) { user { id } } }`
		addMember      = `mutation($g: ID!, $u: ID!) { addGroupMember(input: {groupId: $g, userId: $u}) { user { id } } }`
		removeMember   = `mutation($g: ID!, $u: ID!) { removeGroupMember(input: {groupId: $g, userId: $u}) { user { id } } }`
		setMemberRole  = `mutation($g: ID!, $u: ID!) { setGroupMemberRole(input: {groupId: $g, userId: $u, role: ADMIN}) { user { id } } }`
		updateRoleDoc  = `mutation($id: ID!) { updateRole(input: {id: $id, name: "x"}) { role { id } } }`
		deleteRoleDoc  = `mutation($id: ID!) { deleteRole(input: {id: $id}) { deletedRoleId } }`
		updateGroupDoc = `mutation($id: ID!) { updateGroup(input: {id: $id, name: "x"}) { group { id } } }`
		deleteGroupDoc = `mutation($id: ID!) { deleteGroup(input: {id: $id}) { deletedGroupId } }`
	)
	cases := []struct {
		name, query string
		vars        map[string]any
	}{
		{"updateUser of an unknown user", updateUser, map[string]any{"id": noUser}},
		{"updateUser of a deleted user", updateUser, map[string]any{"id": deleted}},
		{"deactivateUser of an unknown user", deactivate, map[string]any{"id": noUser}},
		{"reactivateUser of an unknown user", reactivate, map[string]any{"id": noUser}},
		{"deleteUser of an unknown user", deleteUser, map[string]any{"id": noUser}},
		{"deleteUser of a deleted user", deleteUser, map[string]any{"id": deleted}},
		{"restoreUser of a user never deleted", restoreUser, map[string]any{"id": user}},
		{"restoreUser of an unknown user", restoreUser, map[string]any{"id": noUser}},
		{"assignRole of an unknown role", assign, map[string]any{"u": user, "r": noRole}},
		{"assignRole to an unknown user", assign, map[string]any{"u": noUser, "r": role}},
		{"assignRole to a deleted user", assign, map[string]any{"u": deleted, "r": role}},
		{"revokeRole of a role not held", revoke, map[string]any{"u": user, "r": role}},
		{"revokeRole of an unknown role", revoke, map[string]any{"u": user, "r": noRole}},
		{"addGroupMember of an unknown user", addMember, map[string]any{"g": group, "u": noUser}},
		{"addGroupMember of a deleted user", addMember, map[string]any{"g": group, "u": deleted}},
		{"addGroupMember to an unknown group", addMember, map[string]any{"g": noGroup, "u": user}},
		{"removeGroupMember of a non-member", removeMember, map[string]any{"g": group, "u": user}},
		{"removeGroupMember from an unknown group", removeMember, map[string]any{"g": noGroup, "u": user}},
		{"setGroupMemberRole of a non-member", setMemberRole, map[string]any{"g": group, "u": user}},
		{"setGroupMemberRole in an unknown group", setMemberRole, map[string]any{"g": noGroup, "u": user}},
		{"updateRole of an unknown role", updateRoleDoc, map[string]any{"id": noRole}},
		{"deleteRole of an unknown role", deleteRoleDoc, map[string]any{"id": noRole}},
		{"updateGroup of an unknown group", updateGroupDoc, map[string]any{"id": noGroup}},
		{"deleteGroup of an unknown group", deleteGroupDoc, map[string]any{"id": noGroup}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			wantError(t, b.do(t, c.query, c.vars), "NOT_FOUND", "")
		})
	}
}

func TestErrors_InvalidInputIsBadInputNamingTheField(t *testing.T) {
	t.Parallel()
	b := setup(t)
	user := b.createUser(t, "valid@example.com", "valid")
	role := createRole(t, b, "valid")
	group := createGroup(t, b, "valid")

	const (
		createUser  = `mutation($in: CreateUserInput!) { createUser(input: $in) { user { id } } }`
		updateUser  = `mutation($in: UpdateUserInput!) { updateUser(input: $in) { user { id } } }`
		createRole  = `mutation($in: CreateRoleInput!) { createRole(input: $in) { role { id } } }`
		updateRole  = `mutation($in: UpdateRoleInput!) { updateRole(input: $in) { role { id } } }`
		createGroup = `mutation($in: CreateGroupInput!) { createGroup(input: $in) { group { id } } }`
		updateGroup = `mutation($in: UpdateGroupInput!) { updateGroup(input: $in) { group { id } } }`
		listUsers   = `query($f: UserFilter!) { users(filter: $f) { totalCount } }`
	)
	newUser := func(email, username string) map[string]any {
		return map[string]any{"in": map[string]any{"email": email, "username": username}}
	}
	cases := []struct {
		name, query string
		vars        map[string]any
		field       string
	}{
		{"email without @", createUser, newUser("not-an-email", "someone"), "input.email"},
		{"email with a display name", createUser, newUser("Ada <ada@example.com>", "someone"), "input.email"},
		{"email without a dotted domain", createUser, newUser("ada@localhost", "someone"), "input.email"},
		{"empty email", createUser, newUser("", "someone"), "input.email"},
		{"username too short", createUser, newUser("ok@example.com", "ab"), "input.username"},
		{"username with spaces", createUser, newUser("ok@example.com", "has space"), "input.username"},
		{"username not ASCII", createUser, newUser("ok@example.com", "jürgen"), "input.username"},
		{"display name with a control character", createUser,
			map[string]any{"in": map[string]any{"email": "ok@example.com", "username": "someone", "displayName": "Bell\u0007"}}, "input.displayName"},
		{"update to a bad email", updateUser, map[string]any{"in": map[string]any{"id": user, "email": "nope"}}, "input.email"},
		{"update to a short username", updateUser, map[string]any{"in": map[string]any{"id": user, "username": "x"}}, "input.username"},
		{"update to a display name with an escape", updateUser, map[string]any{"in": map[string]any{"id": user, "displayName": "\u001b[31mred"}}, "input.displayName"},
		{"empty role name", createRole, map[string]any{"in": map[string]any{"name": ""}}, "input.name"},
		{"role name with outer spaces", createRole, map[string]any{"in": map[string]any{"name": " padded "}}, "input.name"},
		{"permission in capitals", createRole, map[string]any{"in": map[string]any{"name": "r1", "permissions": []string{"Users:Read"}}}, "input.permissions"},
		{"permission without action", createRole, map[string]any{"in": map[string]any{"name": "r1", "permissions": []string{"users"}}}, "input.permissions"},
		{"permission listed twice", createRole, map[string]any{"in": map[string]any{"name": "r1", "permissions": []string{"users:read", "users:read"}}}, "input.permissions"},
		{"rename role to empty", updateRole, map[string]any{"in": map[string]any{"id": role, "name": ""}}, "input.name"},
		{"update role with a bad permission", updateRole, map[string]any{"in": map[string]any{"id": role, "permissions": []string{"no spaces:ok"}}}, "input.permissions"},
		{"empty group name", createGroup, map[string]any{"in": map[string]any{"name": ""}}, "input.name"},
		{"group name on two lines", createGroup, map[string]any{"in": map[string]any{"name": "two\nlines"}}, "input.name"},
		{"group description with a control character", updateGroup, map[string]any{"in": map[string]any{"id": group, "description": "a\u0000b"}}, "input.description"},
		{"search shorter than 3", listUsers, map[string]any{"f": map[string]any{"search": "ab"}}, "filter.search"},
		{"Group ID as role filter", listUsers, map[string]any{"f": map[string]any{"role": group}}, "filter.role"},
		{"garbage as group filter", listUsers, map[string]any{"f": map[string]any{"group": "garbage"}}, "filter.group"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			wantError(t, b.do(t, c.query, c.vars), "BAD_USER_INPUT", c.field)
		})
	}
}

func TestErrors_DuplicatesAreConflicts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createUser(t, "ada@example.com", "Ada")
	bob := b.createUser(t, "bob@example.com", "bob")
	gone := b.createUser(t, "gone@example.com", "gone")
	b.mustDo(t, `mutation($id: ID!) { deleteUser(input: {id: $id}) { deletedUserId } }`, map[string]any{"id": gone}, nil)
	createRole(t, b, "Admin")
	otherRole := createRole(t, b, "Other")
	ops := createGroup(t, b, "Ops")
	otherGroup := createGroup(t, b, "Dev")
	addMember(t, b, ops, bob, "MEMBER")

	const (
		createUser  = `mutation($in: CreateUserInput!) { createUser(input: $in) { user { id } } }`
		updateUser  = `mutation($in: UpdateUserInput!) { updateUser(input: $in) { user { id } } }`
		createRoleQ = `mutation($in: CreateRoleInput!) { createRole(input: $in) { role { id } } }`
		updateRole  = `mutation($in: UpdateRoleInput!) { updateRole(input: $in) { role { id } } }`
		createGroup = `mutation($in: CreateGroupInput!) { createGroup(input: $in) { group { id } } }`
		updateGroup = `mutation($in: UpdateGroupInput!) { updateGroup(input: $in) { group { id } } }`
		add         = `mutation($in: GroupMemberInput!) { addGroupMember(input: $in) { group { id } } }`
	)
	in := func(fields map[string]any) map[string]any { return map[string]any{"in": fields} }
	cases := []struct {
		name, query string
		vars        map[string]any
		field       string
	}{
		{"email in another case", createUser, in(map[string]any{"email": "ADA@Example.COM", "username": "ada2"}), "input.email"},
		{"email of a deleted user", createUser, in(map[string]any{"email": "gone@example.com", "username": "gone2"}), "input.email"},
		{"username in another case", createUser, in(map[string]any{"email": "new@example.com", "username": "ADA"}), "input.username"},
		{"changing email to a taken one", updateUser, in(map[string]any{"id": bob, "email": "Ada@Example.com"}), "input.email"},
		{"changing username to a taken one", updateUser, in(map[string]any{"id": bob, "username": "ada"}), "input.username"},
		{"role name in another case", createRoleQ, in(map[string]any{"name": "admin"}), "input.name"},
		{"renaming a role to a taken name", updateRole, in(map[string]any{"id": otherRole, "name": "ADMIN"}), "input.name"},
		{"group name in another case", createGroup, in(map[string]any{"name": "OPS"}), "input.name"},
		{"renaming a group to a taken name", updateGroup, in(map[string]any{"id": otherGroup, "name": "ops"}), "input.name"},
		{"adding a member twice", add, in(map[string]any{"groupId": ops, "userId": bob}), "input.userId"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			wantError(t, b.do(t, c.query, c.vars), "CONFLICT", c.field)
		})
	}
}

// caseVariant spells address with its letters upper-cased where the bits of
// n say so, so that each n < 2^letters gives a distinct spelling.
func caseVariant(address string, n int) string {
	var s strings.Builder
	bit := 0
	for _, r := range address {
		if unicode.IsLetter(r) {
			if n&(1<<bit) != 0 {
				r = unicode.ToUpper(r)
			}
			bit++
		}
		s.WriteRune(r)
	}
	return s.String()
}

func TestCreateUser_RacingOnOneAddressInDifferentCasesExactlyOneWins(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const racers = 32
	bodies := make([][]byte, racers)
	for i := range bodies {
		body, err := json.Marshal(map[string]any{
			"query": `mutation($in: CreateUserInput!) { createUser(input: $in) { user { id email } } }`,
			"variables": map[string]any{"in": map[string]any{
				"email": caseVariant("racer@example.com", i), "username": fmt.Sprintf("racer%d", i),
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		bodies[i] = body
	}

	// The goroutines only serve the requests; everything that can fail the
	// test happens back on the test goroutine.
	recs := make([]*httptest.ResponseRecorder, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(bodies[i])))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+b.token)
			rec := httptest.NewRecorder()
			<-start
			b.handler.ServeHTTP(rec, req)
			recs[i] = rec
		}()
	}
	close(start)
	wg.Wait()

	winners := 0
	for i, rec := range recs {
		r := response{Status: rec.Code, Raw: rec.Body.String()}
		if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
			t.Fatalf("racer %d: response is not JSON (status %d): %s", i, rec.Code, r.Raw)
		}
		if len(r.Errors) == 0 {
			winners++
			continue
		}
		wantError(t, r, "CONFLICT", "input.email")
	}
	if winners != 1 {
		t.Fatalf("%d of %d racers created the user, want exactly 1", winners, racers)
	}
	var out struct{ Users struct{ TotalCount int } }
	b.mustDo(t, `{ users(filter: {search: "racer@example.com"}) { totalCount } }`, nil, &out)
	if out.Users.TotalCount != 1 {
		t.Fatalf("%d users with the address exist, want 1", out.Users.TotalCount)
	}
}
