package resolver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// jobView is the Job fields the tests read.
type jobView struct {
	ID         string
	Kind       string
	State      string
	Attempts   int
	Progress   *float64
	LastError  *string
	FinishedAt *time.Time
	Export     *struct {
		Format      string
		Rows        int
		RowsTotal   *int
		Bytes       int
		DownloadURL *string
	}
	Import *struct {
		IdempotencyKey string
		RowsTotal      *int
		RowsProcessed  int
		Inserted       int
		Failed         int
		Errors         []struct {
			Line    int
			Field   *string
			Message string
		}
	}
}

const jobFields = `id kind state attempts progress lastError finishedAt
	export { format rows rowsTotal bytes downloadUrl }
	import { idempotencyKey rowsTotal rowsProcessed inserted failed errors { line field message } }`

// jobAs reads a job as the holder of token; nil when they cannot see it.
func (b *bundle) jobAs(t *testing.T, token, id string) *jobView {
	t.Helper()
	r := b.doAs(t, token, `query($id: ID!) { job(id: $id) { `+jobFields+` } }`, map[string]any{"id": id})
	if len(r.Errors) > 0 {
		t.Fatalf("job: %s", r.Raw)
	}
	var out struct{ Job *jobView }
	if err := json.Unmarshal(r.Data, &out); err != nil {
		t.Fatal(err)
	}
	return out.Job
}

// waitJob polls job(id) until the job has finished.
func (b *bundle) waitJob(t *testing.T, token, id string) *jobView {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		j := b.jobAs(t, token, id)
		if j != nil && j.FinishedAt != nil {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s did not finish: %+v", id, j)
		}
		time.Sleep(50 * time.Millisecond) // waiting on the workers
	}
}

// get sends a GET with a bearer token ("" for none).
func (b *bundle) get(t *testing.T, token, path string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	return rec
}

// loginFrom logs in with a user agent, as a device would.
func (b *bundle) loginFrom(t *testing.T, userAgent, identifier, password string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": `mutation($i: String!, $p: String!) { login(input: {identifier: $i, password: $p}) { token } }`,
		"variables": map[string]any{"i": identifier, "p": password}})
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	var r response
	r.Raw = rec.Body.String()
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	return loginToken(t, r)
}

// registerUser registers through the API (retrying while the password
// hasher is busy) and returns nothing: registration never says more.
func (b *bundle) registerUser(t *testing.T, email, username, password string) {
	t.Helper()
	for range 50 {
		r := b.doAs(t, "", `mutation($in: RegisterInput!) { register(input: $in) { accepted } }`,
			map[string]any{"in": map[string]any{"email": email, "username": username, "password": password}})
		if len(r.Errors) == 0 {
			return
		}
		if r.errorCode(t) != "RATE_LIMITED" {
			t.Fatalf("register: %s", r.Raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the hasher stayed busy")
}

func (m *mailbox) subjectsTo(to string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, e := range m.sent {
		if e.To == to {
			out = append(out, e.Subject)
		}
	}
	return out
}

// A password change and a sign-in from a device the account has not used
// before send security notices; a second sign-in from a known device does
// not.
func TestNotices_PasswordChangedAndNewDeviceSignIn(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{workers: true, signInNotices: true})
	const pw = "correct horse battery"
	b.registerUser(t, "grace@example.com", "grace", pw)
	b.loginFrom(t, "Laptop/1.0", "grace", pw)
	b.loginFrom(t, "Laptop/1.0", "grace", pw)
	phone := b.loginFrom(t, "Phone/2.0", "grace", pw)
	r := b.doAs(t, phone, `mutation { changePassword(input: {currentPassword: "correct horse battery", newPassword: "a new strong passphrase"}) { token } }`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("changePassword: %s", r.Raw)
	}
	b.mail.waitFor(t, 4)
	time.Sleep(300 * time.Millisecond) // let any unexpected extra notice arrive
	got := b.mail.subjectsTo("grace@example.com")
	want := map[string]int{"Welcome to Usergraph": 1, "New sign-in to your account": 2, "Your password was changed": 1}
	count := map[string]int{}
	for _, s := range got {
		count[s]++
	}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Fatalf("emails: %v, want %v", count, want)
	}
	b.mail.mu.Lock()
	defer b.mail.mu.Unlock()
	devices := 0
	for _, e := range b.mail.sent {
		if e.Subject == "New sign-in to your account" {
			if !strings.Contains(e.Text, "Device: ") || !strings.Contains(e.HTML, "Reset your password") {
				t.Errorf("sign-in notice lacks the device or the reset link:\n%s", e.Text)
			}
			if strings.Contains(e.Text, "Phone/2.0") {
				devices++
			}
		}
	}
	if devices != 1 {
		t.Errorf("notices naming the new phone: %d, want 1", devices)
	}
}

// An admin's export runs in the background and is downloadable by them
// (and other job admins) only; the file holds exactly the matching users.
func TestExports_UserExportDownloadedByItsRequester(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{workers: true})
	_, admin := b.userWithSession(t, "admin@example.com", "admin", "admin")
	_, member := b.userWithSession(t, "member@example.com", "member", "member")
	if _, err := b.db.Pool.Exec(context.Background(), `INSERT INTO users (id, email, username, display_name)
		SELECT gen_random_uuid(), 'bulk' || i || '@example.com', 'bulk' || i, CASE WHEN i = 7 THEN '=HYPERLINK("x")' ELSE '' END
		FROM generate_series(1, 2500) i`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		format, filter string
		want           int
	}{{"CSV", "{}", 2502}, {"JSONL", `{search: "bulk7"}`, 111}} {
		r := b.doAs(t, admin, `mutation { requestUserExport(input: {format: `+tc.format+`, filter: `+tc.filter+`}) { job { id kind state } } }`, nil)
		var out struct{ RequestUserExport struct{ Job jobView } }
		if len(r.Errors) > 0 || json.Unmarshal(r.Data, &out) != nil {
			t.Fatalf("requestUserExport: %s", r.Raw)
		}
		j := b.waitJob(t, admin, out.RequestUserExport.Job.ID)
		if j.State != "COMPLETED" || j.Export == nil || j.Export.Rows != tc.want || j.Export.DownloadURL == nil || *j.Progress != 1 {
			t.Fatalf("%s export: %+v %+v", tc.format, j, j.Export)
		}
		url := *j.Export.DownloadURL
		if rec := b.get(t, "", url); rec.Code != http.StatusUnauthorized {
			t.Errorf("anonymous download: %d", rec.Code)
		}
		if rec := b.get(t, member, url); rec.Code != http.StatusNotFound {
			t.Errorf("another user's download: %d, want 404", rec.Code)
		}
		rec := b.get(t, admin, url)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Content-Disposition"), "attachment") {
			t.Fatalf("download: %d %v", rec.Code, rec.Header())
		}
		lines := 0
		sc := bufio.NewScanner(rec.Body)
		for sc.Scan() {
			lines++
			if tc.format == "CSV" && strings.Contains(sc.Text(), "=HYPERLINK") && !strings.Contains(sc.Text(), "'=HYPERLINK") {
				t.Errorf("a formula went into the CSV unescaped: %s", sc.Text())
			}
			if tc.format == "JSONL" && !json.Valid(sc.Bytes()) {
				t.Errorf("not a JSON line: %s", sc.Text())
			}
		}
		if tc.format == "CSV" {
			lines-- // the header
		}
		if lines != tc.want {
			t.Errorf("%s file: %d rows, want %d", tc.format, lines, tc.want)
		}
		if rec := b.get(t, admin, "/exports/not-a-uuid"); rec.Code != http.StatusNotFound {
			t.Errorf("malformed id: %d", rec.Code)
		}
	}
	if r := b.doAs(t, admin, `mutation { requestUserExport(input: {format: JSON}) { job { id } } }`, nil); r.errorCode(t) != "BAD_USER_INPUT" {
		t.Errorf("a JSON user export: %s", r.Raw)
	}
}

// An import validates every row: good rows go in, bad ones are reported by
// line and field; the same idempotency key returns the first import.
func TestImports_BadRowsReportedGoodRowsInAndRetriesSafe(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{workers: true})
	_, admin := b.userWithSession(t, "admin@example.com", "admin", "admin")
	csv := "Email,Username,Display_Name,Status\n" +
		"ann@example.com,ann,Ann,\n" + // 2
		"not-an-email,bad1,,\n" + // 3
		"ben@example.com,,Ben,\n" + // 4: no username
		"cat@example.com,cat,Cat,suspended\n" + // 5
		"admin@example.com,someone,,\n" + // 6: taken email
		"ann@example.com,ann2,,\n" + // 7: repeats line 2
		"dan@example.com,dan,,EXPIRED\n" + // 8: bad status
		"eve@example.com,ann,,\n" + // 9: username taken by line 2
		"fay@example.com,fay,,\n" // 10
	q := `mutation($in: ImportUsersInput!) { importUsers(input: $in) { created job { id } } }`
	in := map[string]any{"idempotencyKey": "import-1", "csv": csv}
	var out struct {
		ImportUsers struct {
			Created bool
			Job     jobView
		}
	}
	r := b.doAs(t, admin, q, map[string]any{"in": in})
	if len(r.Errors) > 0 || json.Unmarshal(r.Data, &out) != nil || !out.ImportUsers.Created {
		t.Fatalf("importUsers: %s", r.Raw)
	}
	j := b.waitJob(t, admin, out.ImportUsers.Job.ID)
	if j.State != "COMPLETED" || j.Import == nil {
		t.Fatalf("import job: %+v", j)
	}
	im := j.Import
	if im.Inserted != 3 || im.Failed != 6 || im.RowsProcessed != 9 || im.RowsTotal == nil || *im.RowsTotal != 9 {
		t.Fatalf("import: %+v", im)
	}
	var got []string
	for _, e := range im.Errors {
		got = append(got, fmt.Sprintf("%d:%s", e.Line, *e.Field))
	}
	if want := "[3:email 4:username 6:email 7:email 8:status 9:username]"; fmt.Sprint(got) != want {
		t.Errorf("row errors %v, want %s", got, want)
	}
	var status string
	if err := b.db.Pool.QueryRow(context.Background(), "SELECT status FROM users WHERE email = 'cat@example.com'").Scan(&status); err != nil || status != "SUSPENDED" {
		t.Errorf("cat's status %q (%v)", status, err)
	}

	// The same key again: the first import, nothing new.
	r = b.doAs(t, admin, q, map[string]any{"in": in})
	var again struct {
		ImportUsers struct {
			Created bool
			Job     jobView
		}
	}
	if len(r.Errors) > 0 || json.Unmarshal(r.Data, &again) != nil || again.ImportUsers.Created || again.ImportUsers.Job.ID != j.ID {
		t.Fatalf("repeated importUsers: %s", r.Raw)
	}
	var users int
	if err := b.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM users").Scan(&users); err != nil || users != 4 {
		t.Errorf("users: %d (%v), want the admin and 3 imported", users, err)
	}

	// From a URL on an allowed host; other hosts are refused up front.
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("email,username\ngus@example.com,gus\n"))
	}))
	defer files.Close()
	r = b.doAs(t, admin, q, map[string]any{"in": map[string]any{"idempotencyKey": "import-2", "url": files.URL + "/users.csv"}})
	if len(r.Errors) > 0 || json.Unmarshal(r.Data, &out) != nil {
		t.Fatalf("importUsers from a URL: %s", r.Raw)
	}
	if j := b.waitJob(t, admin, out.ImportUsers.Job.ID); j.State != "COMPLETED" || j.Import.Inserted != 1 {
		t.Fatalf("URL import: %+v %+v", j, j.Import)
	}
	for _, bad := range []map[string]any{
		{"idempotencyKey": "k", "url": "http://169.254.169.254/latest"},
		{"idempotencyKey": "k", "url": "file:///etc/passwd"},
		{"idempotencyKey": "k"},
		{"idempotencyKey": "k", "csv": "a", "url": files.URL},
		{"idempotencyKey": "", "csv": "a"},
	} {
		if r := b.doAs(t, admin, q, map[string]any{"in": bad}); r.errorCode(t) != "BAD_USER_INPUT" {
			t.Errorf("%v: %s", bad, r.Raw)
		}
	}
}

// Jobs are visible to their requester and to job admins, and nobody else;
// admins list, cancel and retry them.
func TestJobs_VisibilityListCancelRetry(t *testing.T) {
	t.Parallel()
	b := setup(t) // no workers: jobs stay where the test puts them
	_, admin := b.userWithSession(t, "admin@example.com", "admin", "admin")
	_, member := b.userWithSession(t, "member@example.com", "member", "member")
	_, other := b.userWithSession(t, "other@example.com", "other", "member")
	r := b.doAs(t, member, `mutation { requestMyDataExport { job { id kind state } } }`, nil)
	var out struct{ RequestMyDataExport struct{ Job jobView } }
	if len(r.Errors) > 0 || json.Unmarshal(r.Data, &out) != nil {
		t.Fatalf("requestMyDataExport: %s", r.Raw)
	}
	id := out.RequestMyDataExport.Job.ID
	if j := b.jobAs(t, member, id); j == nil || j.State != "AVAILABLE" || j.Kind != "export" || j.Export == nil || j.Export.Format != "JSON" {
		t.Fatalf("the requester's view: %+v", j)
	}
	if j := b.jobAs(t, other, id); j != nil {
		t.Fatalf("another member sees the job: %+v", j)
	}
	if j := b.jobAs(t, admin, id); j == nil {
		t.Fatal("the admin does not see the job")
	}
	if r := b.doAs(t, admin, `query($id: ID!) { node(id: $id) { ... on Job { kind } } }`, map[string]any{"id": id}); !strings.Contains(r.Raw, `"kind":"export"`) {
		t.Errorf("node(id:) of a job: %s", r.Raw)
	}
	r = b.doAs(t, admin, `{ jobs(first: 10, filter: {kinds: ["export"], states: [AVAILABLE]}) { nodes { id } pageInfo { hasNextPage } } }`, nil)
	if len(r.Errors) > 0 || !strings.Contains(r.Raw, id) {
		t.Fatalf("jobs: %s", r.Raw)
	}

	cancel := `mutation($id: ID!) { cancelJob(input: {id: $id}) { job { state finishedAt } } }`
	if r := b.doAs(t, admin, cancel, map[string]any{"id": id}); !strings.Contains(r.Raw, `"state":"CANCELLED"`) {
		t.Fatalf("cancelJob: %s", r.Raw)
	}
	if r := b.doAs(t, admin, cancel, map[string]any{"id": id}); r.errorCode(t) != "CONFLICT" {
		t.Fatalf("cancelling a finished job: %s", r.Raw)
	}
	if r := b.doAs(t, admin, `mutation($id: ID!) { retryJob(input: {id: $id}) { job { state finishedAt } } }`, map[string]any{"id": id}); !strings.Contains(r.Raw, `"state":"AVAILABLE"`) {
		t.Fatalf("retryJob: %s", r.Raw)
	}
	if r := b.doAs(t, admin, cancel, map[string]any{"id": "Sm9iOjk5OTk5"}); r.errorCode(t) != "NOT_FOUND" {
		t.Fatalf("cancelling a missing job: %s", r.Raw)
	}
	if r := b.doAs(t, admin, cancel, map[string]any{"id": "nope"}); r.errorCode(t) != "BAD_USER_INPUT" {
		t.Fatalf("a malformed job id: %s", r.Raw)
	}
	var actions int
	if err := b.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM audit_events WHERE action IN ('job.cancel', 'job.retry', 'user.data_export')").Scan(&actions); err != nil || actions != 3 {
		t.Errorf("audit events for the export, cancel and retry: %d (%v)", actions, err)
	}
}

// A user's data export is emailed as a link that works for them alone.
func TestPrivacy_MyDataExportIsTheOwnersAlone(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{workers: true})
	_, admin := b.userWithSession(t, "admin@example.com", "admin", "admin")
	_, member := b.userWithSession(t, "member@example.com", "member", "member")
	r := b.doAs(t, member, `mutation { requestMyDataExport { job { id } } }`, nil)
	var out struct{ RequestMyDataExport struct{ Job jobView } }
	if len(r.Errors) > 0 || json.Unmarshal(r.Data, &out) != nil {
		t.Fatalf("requestMyDataExport: %s", r.Raw)
	}
	j := b.waitJob(t, member, out.RequestMyDataExport.Job.ID)
	if j.State != "COMPLETED" || j.Export.DownloadURL == nil {
		t.Fatalf("export: %+v", j)
	}
	var link string
	for _, e := range b.mail.waitFor(t, 1) {
		if e.To == "member@example.com" && e.Subject == "Your data export is ready" {
			link = e.Link
		}
	}
	if !strings.HasSuffix(link, *j.Export.DownloadURL) {
		t.Fatalf("emailed link %q, want one ending in %s", link, *j.Export.DownloadURL)
	}
	rec := b.get(t, member, *j.Export.DownloadURL)
	var doc struct {
		Profile  struct{ Email string }
		Roles    []struct{ Name string }
		Sessions []any
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &doc) != nil || doc.Profile.Email != "member@example.com" ||
		len(doc.Roles) != 1 || len(doc.Sessions) != 1 {
		t.Fatalf("download: %d %s", rec.Code, rec.Body.String())
	}
	if strings.Contains(rec.Body.String(), "password") || strings.Contains(rec.Body.String(), "token") {
		t.Errorf("the export holds secrets: %s", rec.Body.String())
	}
	if rec := b.get(t, admin, *j.Export.DownloadURL); rec.Code != http.StatusNotFound {
		t.Errorf("an admin downloading someone's personal data: %d, want 404", rec.Code)
	}
}

// Deleting your account signs you out everywhere; logging in inside the
// grace period cancels it.
func TestPrivacy_DeleteMyAccountCancelledByLoggingIn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const pw = "correct horse battery"
	b.registerUser(t, "zoe@example.com", "zoe", pw)
	token := b.loginFrom(t, "Browser", "zoe", pw)
	other := b.loginFrom(t, "Phone", "zoe", pw)
	del := `mutation($p: String!) { deleteMyAccount(input: {password: $p}) { purgeAfter } }`
	if r := b.doAs(t, token, del, map[string]any{"p": "wrong password"}); r.errorCode(t) != "BAD_USER_INPUT" {
		t.Fatalf("wrong password: %s", r.Raw)
	}
	r := b.doAs(t, token, del, map[string]any{"p": pw})
	var out struct {
		DeleteMyAccount struct{ PurgeAfter time.Time }
	}
	if len(r.Errors) > 0 || json.Unmarshal(r.Data, &out) != nil {
		t.Fatalf("deleteMyAccount: %s", r.Raw)
	}
	if d := time.Until(out.DeleteMyAccount.PurgeAfter); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("purgeAfter in %s, want 30 days", d)
	}
	for _, tok := range []string{token, other} {
		if r := b.doAs(t, tok, `{ me { id } }`, nil); r.errorCode(t) != "UNAUTHENTICATED" {
			t.Fatalf("a session after deleteMyAccount: %s", r.Raw)
		}
	}
	if r := b.do(t, `{ user(email: "zoe@example.com") { id } }`, nil); !strings.Contains(r.Raw, `"user":null`) {
		t.Fatalf("the deleted user is still listed: %s", r.Raw)
	}
	// The address stays taken during the grace period.
	if r := b.do(t, `mutation { createUser(input: {email: "zoe@example.com", username: "zoe2"}) { user { id } } }`, nil); r.errorCode(t) != "CONFLICT" {
		t.Fatalf("reusing the address: %s", r.Raw)
	}
	back := b.loginFrom(t, "Browser", "zoe", pw)
	if r := b.doAs(t, back, `{ me { email } }`, nil); !strings.Contains(r.Raw, "zoe@example.com") {
		t.Fatalf("me after logging back in: %s", r.Raw)
	}
	var purge *time.Time
	var cancels int
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT purge_after, (SELECT count(*) FROM audit_events WHERE action = 'user.delete_cancel')
		FROM users WHERE email = 'zoe@example.com' AND deleted_at IS NULL`).Scan(&purge, &cancels); err != nil || purge != nil || cancels != 1 {
		t.Fatalf("after logging back in: purge_after %v, cancel events %d (%v)", purge, cancels, err)
	}
}

// sendWelcome greets each user an import inserts, once, and nobody else:
// not the rows refused, not the users of an import without it.
func TestImports_SendWelcomeGreetsEachInsertedUser(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{workers: true})
	_, admin := b.userWithSession(t, "admin@example.com", "admin", "admin")
	q := `mutation($in: ImportUsersInput!) { importUsers(input: $in) { job { id } } }`
	var out struct{ ImportUsers struct{ Job jobView } }
	run := func(key, csv string, welcome bool) {
		t.Helper()
		r := b.doAs(t, admin, q, map[string]any{"in": map[string]any{"idempotencyKey": key, "csv": csv, "sendWelcome": welcome}})
		if len(r.Errors) > 0 || json.Unmarshal(r.Data, &out) != nil {
			t.Fatalf("importUsers: %s", r.Raw)
		}
		if j := b.waitJob(t, admin, out.ImportUsers.Job.ID); j.State != "COMPLETED" {
			t.Fatalf("import job: %+v", j)
		}
	}
	run("quiet", "email,username\nquiet@example.com,quiet\n", false)
	var csv strings.Builder
	csv.WriteString("email,username\nadmin@example.com,someone\n") // taken: refused
	for i := range 1500 {                                          // two batches
		fmt.Fprintf(&csv, "new%d@example.com,new%d\n", i, i)
	}
	run("greet", csv.String(), true)

	sent := b.mail.waitFor(t, 1500)
	time.Sleep(200 * time.Millisecond) // room for a duplicate to show up
	sent = b.mail.waitFor(t, 1500)
	greeted := map[string]int{}
	for _, e := range sent {
		if e.Subject == "Welcome to Usergraph" {
			greeted[e.To]++
		}
	}
	for i := range 1500 {
		if to := fmt.Sprintf("new%d@example.com", i); greeted[to] != 1 {
			t.Fatalf("%s greeted %d times, want once", to, greeted[to])
		}
	}
	if len(greeted) != 1500 {
		t.Errorf("%d addresses greeted, want the 1500 imported (not the admin, not the quiet import)", len(greeted))
	}
}
