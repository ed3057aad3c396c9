package resolver_test

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// testClock moves one second forward each time it is read, so consecutive
// writes get distinct timestamps that a test can predict.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(time.Second)
	return t
}

// set makes t the next reading.
func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// setupClock is setup with the resolvers reading the returned clock.
func setupClock(t *testing.T) (*bundle, *testClock) {
	t.Helper()
	clock := &testClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	return setupTB(t, setupOpts{now: clock.Now}), clock
}

// createRole creates a role through the API and returns its global ID.
func createRole(t *testing.T, b *bundle, name string, permissions ...string) string {
	t.Helper()
	var out struct {
		CreateRole struct{ Role struct{ ID string } }
	}
	b.mustDo(t, `mutation($in: CreateRoleInput!) { createRole(input: $in) { role { id } } }`,
		map[string]any{"in": map[string]any{"name": name, "permissions": append([]string{}, permissions...)}}, &out)
	return out.CreateRole.Role.ID
}

// createGroup creates a group through the API and returns its global ID.
func createGroup(t *testing.T, b *bundle, name string) string {
	t.Helper()
	var out struct {
		CreateGroup struct{ Group struct{ ID string } }
	}
	b.mustDo(t, `mutation($in: CreateGroupInput!) { createGroup(input: $in) { group { id } } }`,
		map[string]any{"in": map[string]any{"name": name}}, &out)
	return out.CreateGroup.Group.ID
}

// addMember adds a user to a group with the given role (MEMBER or ADMIN).
func addMember(t *testing.T, b *bundle, group, user, role string) {
	t.Helper()
	b.mustDo(t, `mutation($in: GroupMemberInput!) { addGroupMember(input: $in) { group { id } } }`,
		map[string]any{"in": map[string]any{"groupId": group, "userId": user, "role": role}}, nil)
}

// assignRole grants a role to a user.
func assignRole(t *testing.T, b *bundle, user, role string) {
	t.Helper()
	b.mustDo(t, `mutation($u: ID!, $r: ID!) { assignRole(input: {userId: $u, roleId: $r}) { role { id } } }`,
		map[string]any{"u": user, "r": role}, nil)
}

// apiUser is a User as these tests read it.
type apiUser struct {
	ID              string
	Email           string
	Username        string
	DisplayName     string
	Status          string
	EmailVerified   bool
	EmailVerifiedAt *time.Time
	LastLoginAt     *time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
	Roles           []struct{ ID, Name string }
	Groups          struct {
		TotalCount int
		Edges      []struct {
			Role string
			Node struct{ ID string }
		}
	}
}

const apiUserFields = `id email username displayName status emailVerified emailVerifiedAt lastLoginAt createdAt updatedAt
	roles { id name } groups { totalCount edges { role node { id } } }`

// readUser reads a user by ID; nil when the API answers null.
func readUser(t *testing.T, b *bundle, id string) *apiUser {
	t.Helper()
	var out struct{ User *apiUser }
	b.mustDo(t, `query($id: ID!) { user(id: $id) { `+apiUserFields+` } }`, map[string]any{"id": id}, &out)
	return out.User
}

func roleNames(u *apiUser) []string {
	names := make([]string, len(u.Roles))
	for i, r := range u.Roles {
		names[i] = r.Name
	}
	return names
}

func TestCreateUser_DefaultsToActiveAndLowerCasesTheEmail(t *testing.T) {
	t.Parallel()
	b, clock := setupClock(t)
	created := time.Date(2031, 7, 8, 9, 10, 11, 0, time.UTC)
	clock.set(created)
	var out struct{ CreateUser struct{ User apiUser } }
	b.mustDo(t, `mutation { createUser(input: {email: "Grace.Hopper@Example.COM", username: "GraceH", displayName: "Grace Hopper"}) {
		user { `+apiUserFields+` } } }`, nil, &out)
	u := out.CreateUser.User
	if u.Email != "grace.hopper@example.com" || u.Username != "GraceH" || u.DisplayName != "Grace Hopper" || u.Status != "ACTIVE" {
		t.Fatalf("payload user = %+v; want the email lower-cased, username and display name as given, status ACTIVE", u)
	}
	if u.EmailVerified || u.EmailVerifiedAt != nil || u.LastLoginAt != nil || len(u.Roles) != 0 || u.Groups.TotalCount != 0 {
		t.Fatalf("payload user = %+v; want a fresh account: unverified, never signed in, no roles or groups", u)
	}
	if !u.CreatedAt.Equal(created) || !u.UpdatedAt.Equal(created) {
		t.Fatalf("createdAt %v, updatedAt %v; want both %v (the clock)", u.CreatedAt, u.UpdatedAt, created)
	}
	if stored := readUser(t, b, u.ID); stored == nil || stored.Email != u.Email || stored.Status != "ACTIVE" || !stored.CreatedAt.Equal(created) {
		t.Fatalf("read back %+v, want what the payload said", stored)
	}

	var pending struct{ CreateUser struct{ User apiUser } }
	b.mustDo(t, `mutation { createUser(input: {email: "p@example.com", username: "pending", status: PENDING}) { user { `+apiUserFields+` } } }`, nil, &pending)
	if p := pending.CreateUser.User; p.Status != "PENDING" || p.DisplayName != "" {
		t.Fatalf("created with status PENDING and no display name: got status %q, display name %q", p.Status, p.DisplayName)
	}
}

func TestCreate_PayloadTimestampsAreTheStoredOnes(t *testing.T) {
	t.Parallel()
	b, clock := setupClock(t)
	// A clock reading finer than PostgreSQL's microseconds, as time.Now gives.
	clock.set(time.Date(2031, 7, 8, 9, 10, 11, 123456789, time.UTC))

	var out struct {
		CreateUser struct {
			User struct{ ID, CreatedAt, UpdatedAt string }
		}
		CreateRole struct {
			Role struct{ ID, CreatedAt, UpdatedAt string }
		}
		CreateGroup struct {
			Group struct{ ID, CreatedAt, UpdatedAt string }
		}
	}
	b.mustDo(t, `mutation {
		createUser(input: {email: "ts@example.com", username: "stamp"}) { user { id createdAt updatedAt } }
		createRole(input: {name: "stamp"}) { role { id createdAt updatedAt } }
		createGroup(input: {name: "stamp"}) { group { id createdAt updatedAt } } }`, nil, &out)

	var read struct {
		User  struct{ CreatedAt, UpdatedAt string }
		Role  struct{ CreatedAt, UpdatedAt string }
		Group struct{ CreatedAt, UpdatedAt string }
	}
	b.mustDo(t, `query($u: ID!, $r: ID!, $g: ID!) {
		user(id: $u) { createdAt updatedAt } role(id: $r) { createdAt updatedAt } group(id: $g) { createdAt updatedAt } }`,
		map[string]any{"u": out.CreateUser.User.ID, "r": out.CreateRole.Role.ID, "g": out.CreateGroup.Group.ID}, &read)

	for _, c := range []struct{ what, payload, stored string }{
		{"user createdAt", out.CreateUser.User.CreatedAt, read.User.CreatedAt},
		{"user updatedAt", out.CreateUser.User.UpdatedAt, read.User.UpdatedAt},
		{"role createdAt", out.CreateRole.Role.CreatedAt, read.Role.CreatedAt},
		{"role updatedAt", out.CreateRole.Role.UpdatedAt, read.Role.UpdatedAt},
		{"group createdAt", out.CreateGroup.Group.CreatedAt, read.Group.CreatedAt},
		{"group updatedAt", out.CreateGroup.Group.UpdatedAt, read.Group.UpdatedAt},
	} {
		p, _ := time.Parse(time.RFC3339Nano, c.payload)
		s, _ := time.Parse(time.RFC3339Nano, c.stored)
		if !p.Equal(s) {
			t.Errorf("%s: the create payload says %s but the stored value reads %s", c.what, c.payload, c.stored)
		}
	}
}

func TestUpdateUser_ChangesOnlyTheGivenFields(t *testing.T) {
	t.Parallel()
	b, _ := setupClock(t)
	id := b.createUser(t, "ada@example.com", "ada")
	before := readUser(t, b, id)

	var out struct{ UpdateUser struct{ User apiUser } }
	b.mustDo(t, `mutation($id: ID!) { updateUser(input: {id: $id, displayName: "Countess of Lovelace"}) { user { `+apiUserFields+` } } }`,
		map[string]any{"id": id}, &out)
	u := out.UpdateUser.User
	if u.DisplayName != "Countess of Lovelace" {
		t.Fatalf("displayName = %q, want the new one", u.DisplayName)
	}
	if u.Email != before.Email || u.Username != before.Username || u.Status != before.Status || !u.CreatedAt.Equal(before.CreatedAt) {
		t.Fatalf("omitted fields changed: before %+v, after %+v", before, u)
	}
	if !u.UpdatedAt.After(before.UpdatedAt) {
		t.Fatalf("updatedAt %v did not advance past %v", u.UpdatedAt, before.UpdatedAt)
	}

	b.mustDo(t, `mutation($id: ID!) { updateUser(input: {id: $id, email: "Ada.King@Example.org", username: "AdaKing", status: SUSPENDED}) { user { id } } }`,
		map[string]any{"id": id}, nil)
	after := readUser(t, b, id)
	if after.Email != "ada.king@example.org" || after.Username != "AdaKing" || after.Status != "SUSPENDED" || after.DisplayName != "Countess of Lovelace" {
		t.Fatalf("read back %+v; want the new email (lower-cased), username and status, and the display name kept", after)
	}
	if !after.UpdatedAt.After(u.UpdatedAt) {
		t.Fatalf("updatedAt %v did not advance past %v", after.UpdatedAt, u.UpdatedAt)
	}
}

func TestDeactivateAndReactivateUser_SetTheStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.createUser(t, "ada@example.com", "ada")
	var out struct {
		DeactivateUser struct{ User struct{ ID, Status string } }
	}
	b.mustDo(t, `mutation($id: ID!) { deactivateUser(input: {id: $id}) { user { id status } } }`, map[string]any{"id": id}, &out)
	if out.DeactivateUser.User.ID != id || out.DeactivateUser.User.Status != "DEACTIVATED" {
		t.Fatalf("deactivate payload = %+v, want the user with status DEACTIVATED", out.DeactivateUser.User)
	}
	if s := readUser(t, b, id).Status; s != "DEACTIVATED" {
		t.Fatalf("status read back = %s, want DEACTIVATED", s)
	}

	var re struct {
		ReactivateUser struct{ User struct{ ID, Status string } }
	}
	b.mustDo(t, `mutation($id: ID!) { reactivateUser(input: {id: $id}) { user { id status } } }`, map[string]any{"id": id}, &re)
	if re.ReactivateUser.User.Status != "ACTIVE" || readUser(t, b, id).Status != "ACTIVE" {
		t.Fatalf("after reactivateUser: payload status %q; want ACTIVE, also when read back", re.ReactivateUser.User.Status)
	}
}

// visibility is everything through which a user could be seen.
type visibility struct {
	inUsers, byID, byEmail, byUsername, byNode, inNodes, inMembers, inHolders, inGroupFilter, inRoleFilter, inSearch bool
	memberCount, userCount                                                                                           int
}

func (b *bundle) visibilityOf(t *testing.T, user, email, username, group, role string) visibility {
	t.Helper()
	var out struct {
		Users   struct{ Nodes []struct{ ID string } }
		ByID    *struct{ ID string }
		ByEmail *struct{ ID string }
		ByName  *struct{ ID string }
		Node    *struct{ ID string }
		Nodes   []*struct{ ID string }
		Group   struct {
			MemberCount int
			Members     struct{ Nodes []struct{ ID string } }
		}
		Role struct {
			UserCount int
			Users     struct{ Nodes []struct{ ID string } }
		}
		ByGroup  struct{ Nodes []struct{ ID string } }
		ByRole   struct{ Nodes []struct{ ID string } }
		BySearch struct{ Nodes []struct{ ID string } }
	}
	b.mustDo(t, `query($u: ID!, $email: String!, $username: String!, $g: ID!, $r: ID!) {
		users(first: 100) { nodes { id } }
		byID: user(id: $u) { id }
		byEmail: user(email: $email) { id }
		byName: user(username: $username) { id }
		node(id: $u) { id }
		nodes(ids: [$u]) { id }
		group(id: $g) { memberCount members(first: 100) { nodes { id } } }
		role(id: $r) { userCount users(first: 100) { nodes { id } } }
		byGroup: users(filter: {group: $g}) { nodes { id } }
		byRole: users(filter: {role: $r}) { nodes { id } }
		bySearch: users(filter: {search: $username}) { nodes { id } } }`,
		map[string]any{"u": user, "email": email, "username": username, "g": group, "r": role}, &out)
	has := func(nodes []struct{ ID string }) bool {
		return slices.ContainsFunc(nodes, func(n struct{ ID string }) bool { return n.ID == user })
	}
	return visibility{
		inUsers: has(out.Users.Nodes), byID: out.ByID != nil, byEmail: out.ByEmail != nil, byUsername: out.ByName != nil,
		byNode: out.Node != nil, inNodes: len(out.Nodes) == 1 && out.Nodes[0] != nil,
		inMembers: has(out.Group.Members.Nodes), inHolders: has(out.Role.Users.Nodes),
		inGroupFilter: has(out.ByGroup.Nodes), inRoleFilter: has(out.ByRole.Nodes), inSearch: has(out.BySearch.Nodes),
		memberCount: out.Group.MemberCount, userCount: out.Role.UserCount,
	}
}

func TestDeleteUser_HidesTheUserEverywhereAndRestoreUserBringsThemBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	group := createGroup(t, b, "crew")
	role := createRole(t, b, "pilot", "ships:fly")
	other := b.createUser(t, "other@example.com", "other")
	id := b.createUser(t, "vanish@example.com", "vanisher")
	for _, u := range []string{other, id} {
		assignRole(t, b, u, role)
	}
	addMember(t, b, group, other, "MEMBER")
	addMember(t, b, group, id, "ADMIN")

	everywhere := visibility{true, true, true, true, true, true, true, true, true, true, true, 2, 2}
	if got := b.visibilityOf(t, id, "vanish@example.com", "vanisher", group, role); got != everywhere {
		t.Fatalf("before deleting: %+v, want the user visible everywhere", got)
	}

	var del struct {
		DeleteUser struct{ DeletedUserID string }
	}
	b.mustDo(t, `mutation($id: ID!) { deleteUser(input: {id: $id}) { deletedUserId } }`, map[string]any{"id": id}, &del)
	if del.DeleteUser.DeletedUserID != id {
		t.Fatalf("deletedUserId = %q, want %q", del.DeleteUser.DeletedUserID, id)
	}
	if got := b.visibilityOf(t, id, "vanish@example.com", "vanisher", group, role); got != (visibility{memberCount: 1, userCount: 1}) {
		t.Fatalf("after deleteUser: %+v, want the user visible nowhere and counted nowhere", got)
	}

	var res struct{ RestoreUser struct{ User apiUser } }
	b.mustDo(t, `mutation($id: ID!) { restoreUser(input: {id: $id}) { user { `+apiUserFields+` } } }`, map[string]any{"id": id}, &res)
	u := res.RestoreUser.User
	if u.ID != id || u.Email != "vanish@example.com" || u.Username != "vanisher" {
		t.Fatalf("restore payload = %+v, want the restored user", u)
	}
	if !slices.Equal(roleNames(&u), []string{"pilot"}) || u.Groups.TotalCount != 1 || u.Groups.Edges[0].Node.ID != group || u.Groups.Edges[0].Role != "ADMIN" {
		t.Fatalf("restored user has roles %v and groups %+v; want the role and the ADMIN membership held before", roleNames(&u), u.Groups)
	}
	if got := b.visibilityOf(t, id, "vanish@example.com", "vanisher", group, role); got != everywhere {
		t.Fatalf("after restoreUser: %+v, want the user visible everywhere again", got)
	}
}

func TestRemoveGroupMember_OfADeletedUserChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	group := createGroup(t, b, "crew")
	id := b.createUser(t, "gone@example.com", "gone")
	addMember(t, b, group, id, "MEMBER")
	b.mustDo(t, `mutation($id: ID!) { deleteUser(input: {id: $id}) { deletedUserId } }`, map[string]any{"id": id}, nil)

	r := b.do(t, `mutation($g: ID!, $u: ID!) { removeGroupMember(input: {groupId: $g, userId: $u}) { group { id } } }`,
		map[string]any{"g": group, "u": id})
	if code := r.errorCode(t); code != "NOT_FOUND" {
		t.Fatalf("removing a deleted user from a group: code %s, want NOT_FOUND (the user is invisible)", code)
	}

	b.mustDo(t, `mutation($id: ID!) { restoreUser(input: {id: $id}) { user { id } } }`, map[string]any{"id": id}, nil)
	if u := readUser(t, b, id); u.Groups.TotalCount != 1 {
		t.Fatalf("after a removeGroupMember that failed with NOT_FOUND and a restore, the user is in %d groups, want 1: "+
			"a failed mutation must not have changed anything", u.Groups.TotalCount)
	}
}

// apiRole is a Role as these tests read it.
type apiRole struct {
	ID, Name, Description string
	Permissions           []string
	UserCount             int
	CreatedAt, UpdatedAt  time.Time
}

const apiRoleFields = `id name description permissions userCount createdAt updatedAt`

func TestRoles_CreateAndUpdateReplacesPermissions(t *testing.T) {
	t.Parallel()
	b, _ := setupClock(t)
	var created struct{ CreateRole struct{ Role apiRole } }
	b.mustDo(t, `mutation { createRole(input: {name: "Support", description: "Answers tickets", permissions: ["users:read", "tickets:*"]}) {
		role { `+apiRoleFields+` } } }`, nil, &created)
	r := created.CreateRole.Role
	if r.Name != "Support" || r.Description != "Answers tickets" || !slices.Equal(r.Permissions, []string{"users:read", "tickets:*"}) || r.UserCount != 0 {
		t.Fatalf("created role = %+v", r)
	}

	var upd struct{ UpdateRole struct{ Role apiRole } }
	b.mustDo(t, `mutation($id: ID!) { updateRole(input: {id: $id, permissions: ["groups:read"]}) { role { `+apiRoleFields+` } } }`,
		map[string]any{"id": r.ID}, &upd)
	u := upd.UpdateRole.Role
	if !slices.Equal(u.Permissions, []string{"groups:read"}) {
		t.Fatalf("permissions after update = %v, want exactly the new list", u.Permissions)
	}
	if u.Name != r.Name || u.Description != r.Description || !u.UpdatedAt.After(r.UpdatedAt) {
		t.Fatalf("after updating permissions only: %+v; want name and description kept and updatedAt advanced from %v", u, r.UpdatedAt)
	}

	b.mustDo(t, `mutation($id: ID!) { updateRole(input: {id: $id, name: "Helpdesk"}) { role { id } } }`, map[string]any{"id": r.ID}, nil)
	b.mustDo(t, `mutation($id: ID!) { updateRole(input: {id: $id, permissions: []}) { role { id } } }`, map[string]any{"id": r.ID}, nil)
	var read struct{ Role apiRole }
	b.mustDo(t, `query($id: ID!) { role(id: $id) { `+apiRoleFields+` } }`, map[string]any{"id": r.ID}, &read)
	if read.Role.Name != "Helpdesk" || len(read.Role.Permissions) != 0 || read.Role.Description != "Answers tickets" {
		t.Fatalf("read back %+v; want the new name, no permissions left, the description kept", read.Role)
	}
}

func TestDeleteRole_TakesTheRoleFromItsHolders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	doomed := createRole(t, b, "doomed")
	kept := createRole(t, b, "kept")
	u := b.createUser(t, "holder@example.com", "holder")
	assignRole(t, b, u, doomed)
	assignRole(t, b, u, kept)

	var out struct {
		DeleteRole struct{ DeletedRoleID string }
	}
	b.mustDo(t, `mutation($id: ID!) { deleteRole(input: {id: $id}) { deletedRoleId } }`, map[string]any{"id": doomed}, &out)
	if out.DeleteRole.DeletedRoleID != doomed {
		t.Fatalf("deletedRoleId = %q, want %q", out.DeleteRole.DeletedRoleID, doomed)
	}
	if names := roleNames(readUser(t, b, u)); !slices.Equal(names, []string{"kept"}) {
		t.Fatalf("holder's roles after deleteRole = %v, want [kept]", names)
	}
	var after struct {
		Role  *struct{ ID string }
		Roles struct{ TotalCount int }
		Users struct{ TotalCount int }
	}
	b.mustDo(t, `query($id: ID!) { role(id: $id) { id } roles { totalCount } users(filter: {role: $id}) { totalCount } }`,
		map[string]any{"id": doomed}, &after)
	if after.Role != nil || after.Roles.TotalCount != 1 || after.Users.TotalCount != 0 {
		t.Fatalf("after deleteRole: role %v, %d roles, %d holders; want null, 1, 0", after.Role, after.Roles.TotalCount, after.Users.TotalCount)
	}
}

func TestAssignRole_GrantingTwiceIsNoError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	role := createRole(t, b, "reader")
	u := b.createUser(t, "r@example.com", "reader")
	for range 2 {
		var out struct {
			AssignRole struct {
				User struct{ Roles []struct{ Name string } }
				Role struct{ UserCount int }
			}
		}
		b.mustDo(t, `mutation($u: ID!, $r: ID!) { assignRole(input: {userId: $u, roleId: $r}) { user { roles { name } } role { userCount } } }`,
			map[string]any{"u": u, "r": role}, &out)
		if len(out.AssignRole.User.Roles) != 1 || out.AssignRole.Role.UserCount != 1 {
			t.Fatalf("after granting: user roles %v, userCount %d; want the role once and one holder", out.AssignRole.User.Roles, out.AssignRole.Role.UserCount)
		}
	}
	c := pagesOf(b, roleUsersPageQuery, map[string]any{"id": role})(t, pageReq{n: 10})
	if !slices.Equal(c.ids(), []string{u}) || c.TotalCount != 1 {
		t.Fatalf("role users = %v (totalCount %d), want the user once", c.ids(), c.TotalCount)
	}
}

func TestGroups_CreateUpdateDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var created struct {
		CreateGroup struct {
			Group struct {
				ID, Name, Description string
				MemberCount           int
			}
		}
	}
	b.mustDo(t, `mutation { createGroup(input: {name: "Night Shift", description: "After hours"}) { group { id name description memberCount } } }`, nil, &created)
	g := created.CreateGroup.Group
	if g.Name != "Night Shift" || g.Description != "After hours" || g.MemberCount != 0 {
		t.Fatalf("created group = %+v", g)
	}

	var upd struct {
		UpdateGroup struct {
			Group struct{ Name, Description string }
		}
	}
	b.mustDo(t, `mutation($id: ID!) { updateGroup(input: {id: $id, description: "Evenings"}) { group { name description } } }`, map[string]any{"id": g.ID}, &upd)
	if upd.UpdateGroup.Group.Name != "Night Shift" || upd.UpdateGroup.Group.Description != "Evenings" {
		t.Fatalf("after updating the description only: %+v", upd.UpdateGroup.Group)
	}
	b.mustDo(t, `mutation($id: ID!) { updateGroup(input: {id: $id, name: "Late Shift"}) { group { name } } }`, map[string]any{"id": g.ID}, nil)

	u := b.createUser(t, "m@example.com", "member")
	addMember(t, b, g.ID, u, "MEMBER")
	var del struct {
		DeleteGroup struct{ DeletedGroupID string }
	}
	b.mustDo(t, `mutation($id: ID!) { deleteGroup(input: {id: $id}) { deletedGroupId } }`, map[string]any{"id": g.ID}, &del)
	if del.DeleteGroup.DeletedGroupID != g.ID {
		t.Fatalf("deletedGroupId = %q, want %q", del.DeleteGroup.DeletedGroupID, g.ID)
	}
	var after struct {
		Group  *struct{ ID string }
		Groups struct{ TotalCount int }
	}
	b.mustDo(t, `query($id: ID!) { group(id: $id) { id } groups { totalCount } }`, map[string]any{"id": g.ID}, &after)
	if after.Group != nil || after.Groups.TotalCount != 0 {
		t.Fatalf("after deleteGroup: group %v, %d groups; want null and none", after.Group, after.Groups.TotalCount)
	}
	if n := readUser(t, b, u).Groups.TotalCount; n != 0 {
		t.Fatalf("the former member is still in %d groups, want 0", n)
	}
}

func TestGroupMembership_AddAsAdminChangeRoleAndRemove(t *testing.T) {
	t.Parallel()
	b := setup(t)
	group := createGroup(t, b, "staff")
	boss := b.createUser(t, "boss@example.com", "boss")
	plain := b.createUser(t, "plain@example.com", "plain")

	type memberPayload struct {
		Group struct {
			ID          string
			MemberCount int
			Members     struct {
				Edges []struct {
					Role string
					Node struct{ ID string }
				}
			}
		}
		User struct {
			ID     string
			Groups struct {
				Edges []struct {
					Role string
					Node struct{ ID string }
				}
			}
		}
	}
	const payload = `group { id memberCount members { edges { role node { id } } } } user { id groups { edges { role node { id } } } }`
	var add struct{ AddGroupMember memberPayload }
	b.mustDo(t, `mutation($g: ID!, $u: ID!) { addGroupMember(input: {groupId: $g, userId: $u, role: ADMIN}) { `+payload+` } }`,
		map[string]any{"g": group, "u": boss}, &add)
	p := add.AddGroupMember
	if p.Group.ID != group || p.User.ID != boss || p.Group.MemberCount != 1 {
		t.Fatalf("addGroupMember payload = %+v, want the group with one member and the user", p)
	}
	if len(p.User.Groups.Edges) != 1 || p.User.Groups.Edges[0].Role != "ADMIN" || len(p.Group.Members.Edges) != 1 || p.Group.Members.Edges[0].Role != "ADMIN" {
		t.Fatalf("addGroupMember payload = %+v, want the new ADMIN membership seen from both sides", p)
	}

	var addPlain struct{ AddGroupMember memberPayload }
	b.mustDo(t, `mutation($g: ID!, $u: ID!) { addGroupMember(input: {groupId: $g, userId: $u}) { `+payload+` } }`,
		map[string]any{"g": group, "u": plain}, &addPlain)
	if e := addPlain.AddGroupMember.User.Groups.Edges; len(e) != 1 || e[0].Role != "MEMBER" || addPlain.AddGroupMember.Group.MemberCount != 2 {
		t.Fatalf("adding without a role: %+v, want role MEMBER and two members", addPlain.AddGroupMember)
	}

	var set struct{ SetGroupMemberRole memberPayload }
	b.mustDo(t, `mutation($g: ID!, $u: ID!) { setGroupMemberRole(input: {groupId: $g, userId: $u, role: MEMBER}) { `+payload+` } }`,
		map[string]any{"g": group, "u": boss}, &set)
	if e := set.SetGroupMemberRole.User.Groups.Edges; len(e) != 1 || e[0].Role != "MEMBER" {
		t.Fatalf("after setGroupMemberRole MEMBER: user's edges %+v", e)
	}
	for _, e := range set.SetGroupMemberRole.Group.Members.Edges {
		if e.Role != "MEMBER" {
			t.Fatalf("after setGroupMemberRole MEMBER: member %s still has role %s", e.Node.ID, e.Role)
		}
	}

	var rm struct{ RemoveGroupMember memberPayload }
	b.mustDo(t, `mutation($g: ID!, $u: ID!) { removeGroupMember(input: {groupId: $g, userId: $u}) { `+payload+` } }`,
		map[string]any{"g": group, "u": boss}, &rm)
	if p := rm.RemoveGroupMember; p.Group.MemberCount != 1 || len(p.User.Groups.Edges) != 0 || len(p.Group.Members.Edges) != 1 || p.Group.Members.Edges[0].Node.ID != plain {
		t.Fatalf("removeGroupMember payload = %+v, want one member left (plain) and the user in no group", p)
	}
}

func TestMutationDocument_LaterMutationsSeeWhatEarlierOnesWrote(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u := b.createUser(t, "doc@example.com", "doc")
	role := createRole(t, b, "temp")
	group := createGroup(t, b, "team")

	type side struct {
		User struct{ Roles []struct{ Name string } }
		Role struct {
			UserCount int
			Users     struct{ TotalCount int }
		}
	}
	var roles struct{ A, B side }
	b.mustDo(t, `mutation($u: ID!, $r: ID!) {
		a: assignRole(input: {userId: $u, roleId: $r}) { user { roles { name } } role { userCount users { totalCount } } }
		b: revokeRole(input: {userId: $u, roleId: $r}) { user { roles { name } } role { userCount users { totalCount } } } }`,
		map[string]any{"u": u, "r": role}, &roles)
	if len(roles.A.User.Roles) != 1 || roles.A.Role.UserCount != 1 || roles.A.Role.Users.TotalCount != 1 {
		t.Fatalf("a (assign) = %+v, want the role granted", roles.A)
	}
	if len(roles.B.User.Roles) != 0 || roles.B.Role.UserCount != 0 || roles.B.Role.Users.TotalCount != 0 {
		t.Fatalf("b (revoke) = %+v, want the role gone: b must not read what a cached", roles.B)
	}

	type groupSide struct {
		Group struct {
			MemberCount int
			Members     struct{ Nodes []struct{ ID string } }
		}
		User struct{ Groups struct{ TotalCount int } }
	}
	var groups struct{ A, B, C groupSide }
	b.mustDo(t, `mutation($u: ID!, $g: ID!) {
		a: addGroupMember(input: {groupId: $g, userId: $u}) { group { memberCount members { nodes { id } } } user { groups { totalCount } } }
		b: removeGroupMember(input: {groupId: $g, userId: $u}) { group { memberCount members { nodes { id } } } user { groups { totalCount } } }
		c: addGroupMember(input: {groupId: $g, userId: $u, role: ADMIN}) { group { memberCount members { nodes { id } } } user { groups { totalCount } } } }`,
		map[string]any{"u": u, "g": group}, &groups)
	for _, s := range []struct {
		name string
		got  groupSide
		want int
	}{{"a (add)", groups.A, 1}, {"b (remove)", groups.B, 0}, {"c (add again)", groups.C, 1}} {
		if s.got.Group.MemberCount != s.want || len(s.got.Group.Members.Nodes) != s.want || s.got.User.Groups.TotalCount != s.want {
			t.Fatalf("%s = %+v, want %d member(s) seen from every side", s.name, s.got, s.want)
		}
	}
}
