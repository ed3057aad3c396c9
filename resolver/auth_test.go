package resolver_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/graph"
	"github.com/usergraph/usergraph/model"
	"github.com/usergraph/usergraph/redistest"
	"github.com/usergraph/usergraph/resolver"
	"github.com/usergraph/usergraph/server"
)

// Every root field declares who may call it; a field without a directive
// would be open to anyone by omission.
func TestAuthz_EveryRootFieldDeclaresItsRule(t *testing.T) {
	t.Parallel()
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	rules := map[string]bool{"public": true, "authenticated": true, "hasPermission": true}
	for _, root := range []*ast.Definition{schema.Query, schema.Mutation} {
		for _, f := range root.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			n := 0
			for _, d := range f.Directives {
				if rules[d.Name] {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s.%s has %d authorization directives, want exactly 1", root.Name, f.Name, n)
			}
		}
	}
}

// The authorization matrix: every root field against every kind of caller.
func TestAuthz_MatrixOfRootFieldsAndCallers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	adminID, admin := b.userWithSession(t, "admin@example.com", "admin", "admin")
	memberID, member := b.userWithSession(t, "member@example.com", "member", "member")
	_, other := b.userWithSession(t, "other@example.com", "other", "member")
	targetID, _ := b.userWithSession(t, "target@example.com", "target", "member") // what the admin mutations act on
	_, deactivated := b.userWithSession(t, "gone@example.com", "gone", "admin")
	_, revoked := b.userWithSession(t, "revoked@example.com", "revoked", "admin")
	_ = adminID
	// Deactivate one user and revoke the other's sessions behind the API's
	// back: the sessions must die with them.
	_, goneUUID, _ := model.ParseGlobalID("id", b.idOf(t, "gone"))
	if _, err := b.db.Pool.Exec(ctx, "UPDATE users SET status = 'DEACTIVATED' WHERE id = $1", goneUUID); err != nil {
		t.Fatal(err)
	}
	_, revokedUUID, _ := model.ParseGlobalID("id", b.idOf(t, "revoked"))
	if err := b.sessions.RevokeAll(ctx, nil, revokedUUID); err != nil {
		t.Fatal(err)
	}
	// The deactivated user's session may still be cached for this instance;
	// a deactivation through the API revokes it, which is tested elsewhere.
	b.sessions.PermissionsChanged(ctx)

	role := createRole(t, b, "matrix-role")
	group := createGroup(t, b, "matrix-group")
	// "other member" is a second member: the root fields treat every member
	// alike, whoever asks.
	callers := []struct{ name, token string }{
		{"anonymous", ""}, {"member", member}, {"admin", admin}, {"deactivated", deactivated}, {"revoked", revoked},
		{"other member", other},
	}
	const (
		ok     = ""
		unauth = "UNAUTHENTICATED"
		forbid = "FORBIDDEN"
	)
	fields := []struct {
		name  string
		query string
		want  map[string]string // caller → expected auth outcome; absent callers: anonymous-like ones expect unauth
	}{
		{"me", `{ me { id } }`, map[string]string{"member": ok, "admin": ok}},
		{"node", `query($id: ID!) { node(id: $id) { id } }`, map[string]string{"member": forbid, "admin": ok}},
		{"nodes", `query($id: ID!) { nodes(ids: [$id]) { id } }`, map[string]string{"member": forbid, "admin": ok}},
		{"user", `query($id: ID!) { user(id: $id) { id } }`, map[string]string{"member": forbid, "admin": ok}},
		{"users", `{ users(first: 1) { nodes { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"role", `query($role: ID!) { role(id: $role) { name } }`, map[string]string{"member": ok, "admin": ok}},
		{"roles", `{ roles(first: 1) { nodes { name } } }`, map[string]string{"member": ok, "admin": ok}},
		{"group", `query($group: ID!) { group(id: $group) { name } }`, map[string]string{"member": ok, "admin": ok}},
		{"groups", `{ groups(first: 1) { nodes { name } } }`, map[string]string{"member": ok, "admin": ok}},
		{"auditEvents", `{ auditEvents(first: 1) { nodes { action } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"createUser", `mutation { createUser(input: {email: "x@example.com", username: "xx1"}) { user { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"updateUser", `mutation($other: ID!) { updateUser(input: {id: $other, displayName: "X"}) { user { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"deactivateUser", `mutation($other: ID!) { deactivateUser(input: {id: $other}) { user { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"reactivateUser", `mutation($other: ID!) { reactivateUser(input: {id: $other}) { user { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"deleteUser", `mutation($other: ID!) { deleteUser(input: {id: $other}) { deletedUserId } }`, map[string]string{"member": forbid, "admin": ok}},
		{"restoreUser", `mutation($other: ID!) { restoreUser(input: {id: $other}) { user { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"createRole", `mutation { createRole(input: {name: "r-new"}) { role { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"updateRole", `mutation($role: ID!) { updateRole(input: {id: $role, description: "d"}) { role { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"assignRole", `mutation($role: ID!, $other: ID!) { assignRole(input: {userId: $other, roleId: $role}) { role { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"revokeRole", `mutation($role: ID!, $other: ID!) { revokeRole(input: {userId: $other, roleId: $role}) { role { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"deleteRole", `mutation($role: ID!) { deleteRole(input: {id: $role}) { deletedRoleId } }`, map[string]string{"member": forbid, "admin": ok}},
		{"createGroup", `mutation { createGroup(input: {name: "g-new"}) { group { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"updateGroup", `mutation($group: ID!) { updateGroup(input: {id: $group, description: "d"}) { group { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"addGroupMember", `mutation($group: ID!, $other: ID!) { addGroupMember(input: {groupId: $group, userId: $other}) { group { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"setGroupMemberRole", `mutation($group: ID!, $other: ID!) { setGroupMemberRole(input: {groupId: $group, userId: $other, role: ADMIN}) { group { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"removeGroupMember", `mutation($group: ID!, $other: ID!) { removeGroupMember(input: {groupId: $group, userId: $other}) { group { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"deleteGroup", `mutation($group: ID!) { deleteGroup(input: {id: $group}) { deletedGroupId } }`, map[string]string{"member": forbid, "admin": ok}},
		{"register", `mutation { register(input: {email: "new@example.com", username: "newbie", password: "correct horse battery"}) { accepted } }`, map[string]string{"anonymous": ok, "member": ok, "admin": ok, "deactivated": ok, "revoked": ok}},
		{"login", `mutation { login(input: {identifier: "nobody", password: "wrong password"}) { token } }`, map[string]string{"anonymous": ok, "member": ok, "admin": ok, "deactivated": ok, "revoked": ok}},
		{"requestEmailVerification", `mutation { requestEmailVerification { ok } }`, map[string]string{"member": ok, "admin": ok}},
		{"verifyEmail", `mutation { verifyEmail(input: {token: "nope"}) { ok } }`, map[string]string{"anonymous": ok, "member": ok, "admin": ok, "deactivated": ok, "revoked": ok}},
		{"requestPasswordReset", `mutation { requestPasswordReset(input: {email: "nobody@example.com"}) { ok } }`, map[string]string{"anonymous": ok, "member": ok, "admin": ok, "deactivated": ok, "revoked": ok}},
		{"resetPassword", `mutation { resetPassword(input: {token: "nope", newPassword: "a brand new passphrase"}) { ok } }`, map[string]string{"anonymous": ok, "member": ok, "admin": ok, "deactivated": ok, "revoked": ok}},
		{"updateProfile", `mutation { updateProfile(input: {displayName: "Me"}) { user { id } } }`, map[string]string{"member": ok, "admin": ok}},
		{"changePassword", `mutation { changePassword(input: {currentPassword: "x", newPassword: "y"}) { token } }`, map[string]string{"member": ok, "admin": ok}},
		{"revokeSession", `mutation { revokeSession(input: {id: "U2Vzc2lvbjowMWEyMjhkYS05ZDRiLTc3NjctYjRmZi00ZTk0NzA0Mjg3MmY"}) { revokedSessionId } }`, map[string]string{"member": ok, "admin": ok}},
		{"job", `{ job(id: "Sm9iOjE") { id } }`, map[string]string{"member": ok, "admin": ok}},
		{"jobs", `{ jobs(first: 1) { nodes { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"requestUserExport", `mutation { requestUserExport(input: {format: CSV}) { job { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"importUsers", `mutation { importUsers(input: {idempotencyKey: "k", csv: "email,username\n"}) { job { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"retryJob", `mutation { retryJob(input: {id: "Sm9iOjE"}) { job { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"cancelJob", `mutation { cancelJob(input: {id: "Sm9iOjE"}) { job { id } } }`, map[string]string{"member": forbid, "admin": ok}},
		{"requestMyDataExport", `mutation { requestMyDataExport { job { id } } }`, map[string]string{"member": ok, "admin": ok}},
		{"deleteMyAccount", `mutation { deleteMyAccount(input: {password: "not it"}) { purgeAfter } }`, map[string]string{"member": ok, "admin": ok}},
		{"rateLimit", `{ rateLimit { remaining } }`, map[string]string{"anonymous": ok, "member": ok, "admin": ok, "deactivated": ok, "revoked": ok}},
		{"logout", `mutation { logout { ok } }`, map[string]string{"member": ok, "admin": ok}},
		{"logoutEverywhere", `mutation { logoutEverywhere { ok } }`, map[string]string{"member": ok, "admin": ok}},
	}
	// logout ends the session it runs in: later fields get fresh sessions.
	fresh := func(username string) string {
		_, id, _ := model.ParseGlobalID("id", b.idOf(t, username))
		var token string
		if err := b.db.InTx(ctx, func(tx *db.Tx) error {
			var err error
			token, _, err = b.sessions.Create(ctx, tx, id, "test", "127.0.0.1")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return token
	}
	vars := map[string]any{"id": targetID, "other": targetID, "role": role, "group": group, "member": memberID}
	for _, f := range fields {
		if f.name == "logoutEverywhere" {
			callers[1].token, callers[2].token, callers[5].token = fresh("member"), fresh("admin"), fresh("other")
		}
		for _, c := range callers {
			persona := c.name
			if persona == "other member" {
				persona = "member"
			}
			want, ok := f.want[persona]
			if !ok {
				want = unauth
			}
			r := b.doAs(t, c.token, f.query, vars)
			got := ""
			for _, e := range r.Errors {
				// Only the directives' refusals count: a failed login is also
				// UNAUTHENTICATED, but it was allowed to try.
				if e.Message == "log in to do this" || e.Message == "you are not allowed to do this" {
					got, _ = e.Extensions["code"].(string)
				}
			}
			if got != want {
				t.Errorf("%s as %s: got %q, want %q: %s", f.name, c.name, got, want, r.Raw)
			}
		}
	}
}

// idOf returns a user's global ID by username.
func (b *bundle) idOf(t *testing.T, username string) string {
	t.Helper()
	var out struct{ User struct{ ID string } }
	b.mustDo(t, `query($u: String!) { user(username: $u) { id } }`, map[string]any{"u": username}, &out)
	return out.User.ID
}

// Emails are visible to their owner and to holders of users:read only.
func TestAuthz_EmailIsVisibleToItsOwnerAndToReaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, member := b.userWithSession(t, "member@example.com", "member", "member")
	var me struct{ Me struct{ Email string } }
	if r := b.doAs(t, member, `{ me { email } }`, nil); len(r.Errors) > 0 || !strings.Contains(r.Raw, "member@example.com") {
		t.Fatalf("owner cannot read their email: %s", r.Raw)
	}
	_ = me
	b.mustDo(t, `{ users(first: 5) { nodes { email } } }`, nil, nil) // the operator holds users:read
}

func (b *bundle) login(t *testing.T, identifier, password string) (response, *http.Cookie) {
	t.Helper()
	body := `{"query":"mutation($i: String!, $p: String!) { login(input: {identifier: $i, password: $p}) { token expiresAt user { username email } } }","variables":{"i":` +
		quote(identifier) + `,"p":` + quote(password) + `}}`
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	var r response
	r.Status, r.Raw = rec.Code, rec.Body.String()
	if err := jsonUnmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("login response is not JSON: %s", r.Raw)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == auth.CookieName {
			return r, c
		}
	}
	return r, nil
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func loginToken(t *testing.T, r response) string {
	t.Helper()
	var out struct{ Login struct{ Token string } }
	if len(r.Errors) > 0 || jsonUnmarshal(r.Data, &out) != nil || out.Login.Token == "" {
		t.Fatalf("login failed: %s", r.Raw)
	}
	return out.Login.Token
}

// The whole account life cycle through the API.
func TestAccounts_RegisterLoginUseLogout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg := `mutation($in: RegisterInput!) { register(input: $in) { accepted } }`
	in := map[string]any{"email": "Grace@Example.com", "username": "grace", "password": "correct horse battery", "displayName": "Grace"}
	first := b.doAs(t, "", reg, map[string]any{"in": in})
	if len(first.Errors) > 0 || !strings.Contains(first.Raw, `"accepted":true`) {
		t.Fatalf("register: %s", first.Raw)
	}

	// The same address again, in another case and with another username:
	// the same answer, and no second account.
	in2 := map[string]any{"email": "grace@example.com", "username": "grace2", "password": "another good passphrase"}
	again := b.doAs(t, "", reg, map[string]any{"in": in2})
	// (The debug extension's statement count differs; production runs
	// without it. Compare what every deployment returns.)
	if string(again.Data) != string(first.Data) || len(again.Errors) != len(first.Errors) {
		t.Fatalf("registering a taken address answers differently:\nnew:   %s\ntaken: %s", first.Raw, again.Raw)
	}
	var n int
	if err := b.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM users").Scan(&n); err != nil || n != 1 {
		t.Fatalf("users after two registrations of one address: %d (%v), want 1", n, err)
	}

	// Weak passwords are refused with the field named.
	weak := b.doAs(t, "", reg, map[string]any{"in": map[string]any{"email": "w@example.com", "username": "weak", "password": "password123"}})
	if weak.errorCode(t) != "BAD_USER_INPUT" || weak.Errors[0].Extensions["field"] != "input.password" {
		t.Fatalf("common password: %s", weak.Raw)
	}

	// Log in by email (any case) and by username; both give working tokens
	// and a cookie for browsers.
	r, cookie := b.login(t, "GRACE@example.com", "correct horse battery")
	token := loginToken(t, r)
	if cookie == nil || !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" {
		t.Fatalf("session cookie: %+v", cookie)
	}
	r2, _ := b.login(t, "Grace", "correct horse battery")
	token2 := loginToken(t, r2)
	if token == token2 {
		t.Fatal("two logins gave the same token")
	}
	if r := b.doAs(t, token, `{ me { username email } }`, nil); !strings.Contains(r.Raw, `"username":"grace"`) {
		t.Fatalf("me with the bearer token: %s", r.Raw)
	}
	// The cookie authenticates too.
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(`{"query":"{ me { username } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(&http.Cookie{Name: auth.CookieName, Value: cookie.Value})
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	if !strings.Contains(rec.Body.String(), `"username":"grace"`) {
		t.Fatalf("me with the cookie: %s", rec.Body.String())
	}

	// Logout ends this session only.
	if r := b.doAs(t, token, `mutation { logout { ok } }`, nil); len(r.Errors) > 0 {
		t.Fatalf("logout: %s", r.Raw)
	}
	if r := b.doAs(t, token, `{ me { id } }`, nil); r.errorCode(t) != "UNAUTHENTICATED" {
		t.Fatalf("token after logout: %s", r.Raw)
	}
	if r := b.doAs(t, token2, `{ me { id } }`, nil); len(r.Errors) > 0 {
		t.Fatalf("the other session after logout: %s", r.Raw)
	}
	// Logout everywhere ends the rest.
	b.doAs(t, token2, `mutation { logoutEverywhere { ok } }`, nil)
	if r := b.doAs(t, token2, `{ me { id } }`, nil); r.errorCode(t) != "UNAUTHENTICATED" {
		t.Fatalf("token after logoutEverywhere: %s", r.Raw)
	}
}

// A failed login says nothing about why: unknown account, wrong password and
// deactivated account answer the same.
func TestAccounts_FailedLoginsAnswerAlike(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.doAs(t, "", `mutation { register(input: {email: "ada@example.com", username: "ada", password: "correct horse battery"}) { accepted } }`, nil)
	b.doAs(t, "", `mutation { register(input: {email: "bob@example.com", username: "bob", password: "correct horse battery"}) { accepted } }`, nil)
	b.mustDo(t, `mutation($id: ID!) { deactivateUser(input: {id: $id}) { user { status } } }`, map[string]any{"id": b.idOf(t, "bob")}, nil)

	unknown, _ := b.login(t, "nobody@example.com", "correct horse battery")
	wrong, _ := b.login(t, "ada@example.com", "wrong horse battery")
	inactive, _ := b.login(t, "bob", "correct horse battery")
	same := func(a, b response) bool {
		return string(a.Data) == string(b.Data) && len(a.Errors) == 1 && len(b.Errors) == 1 &&
			a.Errors[0].Message == b.Errors[0].Message && a.Errors[0].Extensions["code"] == b.Errors[0].Extensions["code"]
	}
	if !same(unknown, wrong) || !same(wrong, inactive) {
		t.Fatalf("failed logins differ:\nunknown:  %s\nwrong:    %s\ninactive: %s", unknown.Raw, wrong.Raw, inactive.Raw)
	}
	if unknown.errorCode(t) != "UNAUTHENTICATED" {
		t.Fatalf("failed login code: %s", unknown.Raw)
	}
}

// Deactivating a user through the API ends their sessions at once, and
// changing a password ends every other session.
func TestAccounts_DeactivationAndPasswordChangeEndSessions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.doAs(t, "", `mutation { register(input: {email: "ada@example.com", username: "ada", password: "correct horse battery"}) { accepted } }`, nil)
	r1, _ := b.login(t, "ada", "correct horse battery")
	old := loginToken(t, r1)
	b.doAs(t, old, `{ me { id } }`, nil) // cached now

	var out struct {
		ChangePassword struct{ Token string }
	}
	r := b.doAs(t, old, `mutation { changePassword(input: {currentPassword: "correct horse battery", newPassword: "an even better passphrase"}) { token } }`, nil)
	if len(r.Errors) > 0 || jsonUnmarshal(r.Data, &out) != nil {
		t.Fatalf("changePassword: %s", r.Raw)
	}
	if r := b.doAs(t, old, `{ me { id } }`, nil); r.errorCode(t) != "UNAUTHENTICATED" {
		t.Fatalf("old session after a password change: %s", r.Raw)
	}
	if r := b.doAs(t, out.ChangePassword.Token, `{ me { id } }`, nil); len(r.Errors) > 0 {
		t.Fatalf("new session after a password change: %s", r.Raw)
	}
	if r, _ := b.login(t, "ada", "correct horse battery"); len(r.Errors) == 0 {
		t.Fatal("the old password still works")
	}
	r2, _ := b.login(t, "ada", "an even better passphrase")
	fresh := loginToken(t, r2)
	b.doAs(t, fresh, `{ me { id } }`, nil) // cached now

	b.mustDo(t, `mutation($id: ID!) { deactivateUser(input: {id: $id}) { user { status } } }`, map[string]any{"id": b.idOf(t, "ada")}, nil)
	if r := b.doAs(t, fresh, `{ me { id } }`, nil); r.errorCode(t) != "UNAUTHENTICATED" {
		t.Fatalf("session of a deactivated user: %s", r.Raw)
	}
}

// At most 10 sessions per user: the 11th login ends the oldest.
func TestAccounts_OldestSessionIsEvictedBeyondTheLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, first := b.userWithSession(t, "many@example.com", "many", "member")
	var uid string
	if r := b.doAs(t, first, `{ me { id } }`, nil); len(r.Errors) > 0 {
		t.Fatalf("first session: %s", r.Raw)
	} else {
		uid = r.Raw
	}
	_, id, _ := model.ParseGlobalID("id", b.idOf(t, "many"))
	for range 10 {
		if err := b.db.InTx(context.Background(), func(tx *db.Tx) error {
			_, _, err := b.sessions.Create(context.Background(), tx, id, "test", "127.0.0.1")
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if r := b.doAs(t, first, `{ me { id } }`, nil); r.errorCode(t) != "UNAUTHENTICATED" {
		t.Fatalf("oldest session after 10 more logins: %s (was %s)", r.Raw, uid)
	}
	var live int
	if err := b.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL", id).Scan(&live); err != nil || live != 10 {
		t.Fatalf("live sessions: %d (%v), want 10", live, err)
	}
}

// Many logins of one account at once (an app on several devices, a load
// test) all succeed: evicting the oldest sessions must not deadlock one
// login against another, and the limit still holds afterwards.
func TestAccounts_ConcurrentLoginsOfOneAccount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, _ = b.userWithSession(t, "busy@example.com", "busy", "member")
	_, id, _ := model.ParseGlobalID("id", b.idOf(t, "busy"))
	const logins = 24
	errs := make(chan error, logins)
	var wg sync.WaitGroup
	for range logins {
		wg.Go(func() {
			errs <- b.db.InTx(context.Background(), func(tx *db.Tx) error {
				_, _, err := b.sessions.Create(context.Background(), tx, id, "test", "127.0.0.1")
				return err
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent login: %v", err)
		}
	}
	var live int
	if err := b.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL", id).Scan(&live); err != nil || live != 10 {
		t.Fatalf("live sessions after %d concurrent logins: %d (%v), want 10", logins, live, err)
	}
}

// instance is another Usergraph process on the same database: its own
// resolvers, loaders and session service, sharing only what real instances
// share (PostgreSQL, and Redis when given).
func (b *bundle) instance(t *testing.T, cache auth.SessionCache) http.Handler {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	sessions := auth.NewSessions(b.db, cache, auth.SessionConfig{}, nil, log)
	res := resolver.New(b.db, resolver.Services{Sessions: sessions, Hasher: b.hasher,
		Throttle: auth.NewThrottle(auth.NewMemoryThrottleStore(), auth.ThrottleConfig{}, nil, log)},
		resolver.Config{LoaderWait: time.Millisecond})
	return server.New(server.Config{Debug: true}, res, sessions, b.db, log)
}

// redisTestTimeout bounds each session-cache call in tests. The default
// 100 ms is for production; under `go test -race ./...` on two cores a
// Redis call can take longer, and a bump or delete that times out is only
// logged, which would fail the test for the machine's load.
const redisTestTimeout = 5 * time.Second

// instanceWithOperator is an instance that also accepts the operator token.
func (b *bundle) instanceWithOperator(t *testing.T, rs *redistest.Server) http.Handler {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	sessions := auth.NewSessions(b.db, auth.NewRedisCache(rs.Client(t), rs.Reads(t, redisTestTimeout), redisTestTimeout, log), auth.SessionConfig{}, nil, log)
	res := resolver.New(b.db, resolver.Services{Sessions: sessions, Hasher: b.hasher,
		Throttle: auth.NewThrottle(auth.NewMemoryThrottleStore(), auth.ThrottleConfig{}, nil, log)},
		resolver.Config{LoaderWait: time.Millisecond})
	return server.New(server.Config{Debug: true}, res, operatorAuthn{sessions}, b.db, log)
}

func post(t *testing.T, h http.Handler, token, body string) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Body.String()
}

const meQuery = `{"query":"{ me { username } }"}`

// Instances are stateless: a session made through one is accepted by the
// others, and a logout through one is refused by all of them at once, even
// where the session was cached a moment before.
func TestSessions_RevocationIsSeenByEveryInstance(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rs := redistest.Start(t)
	a := b.instance(t, auth.NewRedisCache(rs.Client(t), rs.Reads(t, redisTestTimeout), redisTestTimeout, slog.New(slog.DiscardHandler)))
	c := b.instance(t, auth.NewRedisCache(rs.Client(t), rs.Reads(t, redisTestTimeout), redisTestTimeout, slog.New(slog.DiscardHandler)))
	_, token := b.userWithSession(t, "ada@example.com", "ada", "member")

	for name, h := range map[string]http.Handler{"a": a, "c": c} {
		if out := post(t, h, token, meQuery); !strings.Contains(out, `"username":"ada"`) {
			t.Fatalf("instance %s does not accept the session: %s", name, out)
		}
	}
	post(t, a, token, `{"query":"mutation { logout { ok } }"}`)
	for name, h := range map[string]http.Handler{"a": a, "c": c} {
		if out := post(t, h, token, meQuery); !strings.Contains(out, "UNAUTHENTICATED") {
			t.Fatalf("instance %s still accepts the session after logout elsewhere: %s", name, out)
		}
	}

	// Flushing Redis logs nobody out: PostgreSQL is the source of truth.
	_, token2 := b.userWithSession(t, "bob@example.com", "bob", "member")
	post(t, a, token2, meQuery)
	if err := rs.Client(t).FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if out := post(t, c, token2, meQuery); !strings.Contains(out, `"username":"bob"`) {
		t.Fatalf("session lost with the Redis flush: %s", out)
	}
}

// A permission change applies to the next request of every holder, on every
// instance, although their sessions are cached.
func TestSessions_PermissionChangesApplyAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rs := redistest.Start(t)
	c := b.instance(t, auth.NewRedisCache(rs.Client(t), rs.Reads(t, redisTestTimeout), redisTestTimeout, slog.New(slog.DiscardHandler)))
	_, token := b.userWithSession(t, "ada@example.com", "ada", "member")
	const list = `{"query":"{ users(first: 1) { nodes { id } } }"}`
	if out := post(t, c, token, list); !strings.Contains(out, "FORBIDDEN") {
		t.Fatalf("member listing users: %s", out)
	}
	// The operator grants ada users:read through another instance.
	role := createRole(t, b, "reader", "users:read")
	body := `{"query":"mutation($u: ID!, $r: ID!) { assignRole(input: {userId: $u, roleId: $r}) { role { id } } }","variables":{"u":` +
		quote(b.idOf(t, "ada")) + `,"r":` + quote(role) + `}}`
	if out := post(t, b.instanceWithOperator(t, rs), operatorToken, body); strings.Contains(out, "errors") {
		t.Fatalf("assignRole: %s", out)
	}
	if out := post(t, c, token, list); strings.Contains(out, "FORBIDDEN") {
		t.Fatalf("the grant did not apply on another instance: %s", out)
	}
}

// After five consecutive failures an account is locked for a growing delay;
// while locked, even the right password answers like a wrong one. The
// throttle's clock is moved by hand: no test sleeps.
func TestThrottle_AccountLocksAfterFiveFailuresWithGrowingDelay(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.doAs(t, "", `mutation { register(input: {email: "ada@example.com", username: "ada", password: "correct horse battery"}) { accepted } }`, nil)
	for range 5 {
		if r, _ := b.login(t, "ada", "wrong guess here"); r.errorCode(t) != "UNAUTHENTICATED" {
			t.Fatalf("wrong password: %s", r.Raw)
		}
	}
	right, _ := b.login(t, "ada", "correct horse battery")
	wrong, _ := b.login(t, "ada", "wrong guess here")
	if len(right.Errors) != 1 || right.Errors[0].Message != wrong.Errors[0].Message {
		t.Fatalf("a locked account must answer the right password like a wrong one: %s vs %s", right.Raw, wrong.Raw)
	}
	b.throttleClock.Advance(1100 * time.Millisecond) // the first lock is 1s
	if r, _ := b.login(t, "ADA@example.com", "correct horse battery"); len(r.Errors) != 0 {
		t.Fatalf("after the lock expired: %s", r.Raw)
	}
	// Success resets the count: five more failures before the next lock.
	for range 4 {
		b.login(t, "ada", "wrong guess here")
	}
	if r, _ := b.login(t, "ada", "correct horse battery"); len(r.Errors) != 0 {
		t.Fatalf("four failures must not lock: %s", r.Raw)
	}
	// Seven failures: locked for 1s × 2² = 4s after the last.
	for range 7 {
		b.login(t, "ada", "wrong guess here")
		b.throttleClock.Advance(5 * time.Second) // outlast each lock so every attempt counts
	}
	b.throttleClock.Advance(-5 * time.Second) // back to the moment of the 7th failure
	b.throttleClock.Advance(3 * time.Second)
	if r, _ := b.login(t, "ada", "correct horse battery"); len(r.Errors) == 0 {
		t.Fatal("3s after the 7th failure the account must still be locked (4s)")
	}
	b.throttleClock.Advance(1100 * time.Millisecond)
	if r, _ := b.login(t, "ada", "correct horse battery"); len(r.Errors) != 0 {
		t.Fatalf("4.1s after the 7th failure: %s", r.Raw)
	}
}

// One address may try at most 30 logins per 5 minutes.
func TestThrottle_PerAddressLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var last response
	for range 31 {
		last, _ = b.login(t, "nobody", "whatever password")
	}
	if last.errorCode(t) != "RATE_LIMITED" {
		t.Fatalf("31st login from one address: %s", last.Raw)
	}
	b.throttleClock.Advance(5 * time.Minute)
	if r, _ := b.login(t, "nobody", "whatever password"); r.errorCode(t) != "UNAUTHENTICATED" {
		t.Fatalf("next window: %s", r.Raw)
	}
}

// Aliases cannot multiply password guesses within one request.
func TestThrottle_SensitiveMutationsOncePerDocument(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.doAs(t, "", `mutation {
		a: login(input: {identifier: "ada", password: "guess one"}) { token }
		b: login(input: {identifier: "ada", password: "guess two"}) { token }
	}`, nil)
	if r.errorCode(t) != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "login") {
		t.Fatalf("two logins in one document: %s", r.Raw)
	}
	var n int
	if err := b.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM sessions").Scan(&n); err != nil || n != 0 {
		t.Fatalf("sessions after the refused document: %d (%v)", n, err)
	}
}

// The last active administrator cannot be demoted, deactivated or deleted,
// also when two admins try it on each other at the same moment.
func TestAdmins_TheLastOneStays(t *testing.T) {
	t.Parallel()
	b := setup(t)
	aliceID, alice := b.userWithSession(t, "alice@example.com", "alice", "admin")
	bobID, bob := b.userWithSession(t, "bob@example.com", "bob", "admin")
	var roles struct {
		Roles struct{ Nodes []struct{ ID, Name string } }
	}
	b.mustDo(t, `{ roles(first: 10) { nodes { id name } } }`, nil, &roles)
	adminRole := ""
	for _, r := range roles.Roles.Nodes {
		if r.Name == "admin" {
			adminRole = r.ID
		}
	}

	// Each revokes the other's admin role at the same time: one must fail.
	revoke := `mutation($u: ID!, $r: ID!) { revokeRole(input: {userId: $u, roleId: $r}) { role { id } } }`
	results := make(chan response, 2)
	go func() { results <- b.doAs(t, alice, revoke, map[string]any{"u": bobID, "r": adminRole}) }()
	go func() { results <- b.doAs(t, bob, revoke, map[string]any{"u": aliceID, "r": adminRole}) }()
	r1, r2 := <-results, <-results
	okCount := 0
	for _, r := range []response{r1, r2} {
		if len(r.Errors) == 0 {
			okCount++
		} else if code, _ := r.Errors[0].Extensions["code"].(string); code != "CONFLICT" && code != "FORBIDDEN" {
			// CONFLICT when both ran at once; FORBIDDEN when the loser's
			// request started after it had already lost its role.
			t.Fatalf("the refused demotion: %s", r.Raw)
		}
	}
	if okCount != 1 {
		t.Fatalf("%d of 2 simultaneous demotions succeeded, want exactly 1:\n%s\n%s", okCount, r1.Raw, r2.Raw)
	}
	var admins int
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE r.name = 'admin'`).Scan(&admins); err != nil || admins != 1 {
		t.Fatalf("admins left: %d (%v), want 1", admins, err)
	}

	// The survivor can be neither deactivated nor deleted, nor can the admin
	// role lose its permissions or be deleted.
	var survivorName string
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT u.username FROM users u JOIN user_roles ur ON ur.user_id = u.id
		JOIN roles r ON r.id = ur.role_id WHERE r.name = 'admin'`).Scan(&survivorName); err != nil {
		t.Fatal(err)
	}
	survivor, survivorToken := aliceID, alice
	if survivorName == "bob" {
		survivor, survivorToken = bobID, bob
	}
	for name, q := range map[string]string{
		"deactivate": `mutation($u: ID!) { deactivateUser(input: {id: $u}) { user { id } } }`,
		"delete":     `mutation($u: ID!) { deleteUser(input: {id: $u}) { deletedUserId } }`,
		"strip":      `mutation($r: ID!) { updateRole(input: {id: $r, permissions: []}) { role { id } } }`,
		"deleteRole": `mutation($r: ID!) { deleteRole(input: {id: $r}) { deletedRoleId } }`,
	} {
		r := b.doAs(t, survivorToken, q, map[string]any{"u": survivor, "r": adminRole})
		if r.errorCode(t) != "CONFLICT" {
			t.Fatalf("%s of the last admin: %s", name, r.Raw)
		}
	}
}

// 64 registrations of one address in different letter cases, at once, from
// different clients: exactly one account, and every client the same answer.
func TestAccounts_RegistrationRaceMakesOneAccount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const racers = 64
	bodies := make([]string, racers)
	for i := range racers {
		email := []byte("racer@example.com")
		for j := range email {
			if i&(1<<(j%6)) != 0 && email[j] >= 'a' && email[j] <= 'z' {
				email[j] -= 'a' - 'A'
			}
		}
		bodies[i] = `{"query":"mutation($e: String!, $u: String!) { register(input: {email: $e, username: $u, password: \"correct horse battery\"}) { accepted } }",` +
			`"variables":{"e":"` + string(email) + `","u":"racer` + strconv.Itoa(i) + `"}}`
	}
	start := make(chan struct{})
	outs := make([]string, racers)
	var attempt atomic.Int64 // each attempt from its own address: this test is not about the per-address limit
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			// Hashing is bounded (a slot per core and a short queue); a client told
			// RATE_LIMITED tries again, as real clients do.
			for {
				req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(bodies[i]))
				req.Header.Set("Content-Type", "application/json")
				a := attempt.Add(1)
				req.RemoteAddr = "10." + strconv.Itoa(int(a/62500)) + "." + strconv.Itoa(int(a/250%250)) + "." + strconv.Itoa(int(a%250+1)) + ":40000"
				rec := httptest.NewRecorder()
				b.handler.ServeHTTP(rec, req)
				outs[i] = rec.Body.String()
				if !strings.Contains(outs[i], "in progress") {
					return
				}
				runtime.Gosched()
			}
		})
	}
	close(start)
	wg.Wait()
	for i, out := range outs {
		if !strings.Contains(out, `"accepted":true`) {
			t.Fatalf("racer %d: %s", i, out)
		}
	}
	var n int
	if err := b.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM users WHERE email = 'racer@example.com'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("accounts for the address: %d (%v), want 1", n, err)
	}
}

// Sessions end after 30 idle minutes and 12 hours after login, used or not.
func TestSessions_IdleAndAbsoluteTimeouts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clock := &fakeClock{t: time.Now()}
	log := slog.New(slog.DiscardHandler)
	sessions := auth.NewSessions(b.db, auth.NewMemoryCache(clock.Now), auth.SessionConfig{}, clock.Now, log)
	res := resolver.New(b.db, resolver.Services{Sessions: sessions, Hasher: b.hasher,
		Throttle: auth.NewThrottle(auth.NewMemoryThrottleStore(), auth.ThrottleConfig{}, nil, log)}, resolver.Config{})
	h := server.New(server.Config{}, res, sessions, b.db, log)
	_, id, _ := model.ParseGlobalID("id", b.createUser(t, "ada@example.com", "ada"))
	newSession := func() string {
		var token string
		if err := b.db.InTx(context.Background(), func(tx *db.Tx) error {
			var err error
			token, _, err = sessions.Create(context.Background(), tx, id, "test", "127.0.0.1")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return token
	}

	idle := newSession()
	clock.Advance(29 * time.Minute)
	if out := post(t, h, idle, meQuery); !strings.Contains(out, `"ada"`) {
		t.Fatalf("after 29 idle minutes: %s", out)
	}
	clock.Advance(29 * time.Minute) // used 29 minutes ago: still alive
	if out := post(t, h, idle, meQuery); !strings.Contains(out, `"ada"`) {
		t.Fatalf("29 minutes after the last use: %s", out)
	}
	clock.Advance(31 * time.Minute)
	if out := post(t, h, idle, meQuery); !strings.Contains(out, "UNAUTHENTICATED") {
		t.Fatalf("after 31 idle minutes: %s", out)
	}

	busy := newSession()
	for range 12 * 4 { // used every 15 minutes for 12 hours
		clock.Advance(15 * time.Minute)
		post(t, h, busy, meQuery)
	}
	clock.Advance(time.Minute)
	if out := post(t, h, busy, meQuery); !strings.Contains(out, "UNAUTHENTICATED") {
		t.Fatalf("12 hours after login, though used: %s", out)
	}
}

// Admins (users:write) list and revoke anyone's sessions; members only
// their own.
func TestSessions_AdminsManageAnyonesSessions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	adaID, ada := b.userWithSession(t, "ada@example.com", "ada", "member")
	_, bob := b.userWithSession(t, "bob@example.com", "bob", "member")
	var out struct {
		User struct {
			Sessions struct{ Nodes []struct{ ID string } }
		}
	}
	b.mustDo(t, `query($id: ID!) { user(id: $id) { sessions(first: 5) { nodes { id } } } }`, map[string]any{"id": adaID}, &out)
	if len(out.User.Sessions.Nodes) != 1 {
		t.Fatalf("ada's sessions as seen by an admin: %+v", out)
	}
	sid := out.User.Sessions.Nodes[0].ID
	revoke := `mutation($id: ID!) { revokeSession(input: {id: $id}) { revokedSessionId } }`
	if r := b.doAs(t, bob, revoke, map[string]any{"id": sid}); r.errorCode(t) != "NOT_FOUND" {
		t.Fatalf("bob revoking ada's session: %s", r.Raw)
	}
	if r := b.doAs(t, ada, `{ me { id } }`, nil); len(r.Errors) > 0 {
		t.Fatalf("ada after bob's attempt: %s", r.Raw)
	}
	b.mustDo(t, revoke, map[string]any{"id": sid}, nil)
	if r := b.doAs(t, ada, `{ me { id } }`, nil); r.errorCode(t) != "UNAUTHENTICATED" {
		t.Fatalf("ada after the admin revoked her session: %s", r.Raw)
	}
}
