package resolver_test

import (
	"context"
	"crypto/sha256"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usergraph/usergraph/jobs"
)

var linkRe = regexp.MustCompile(`https://\S+`)

// tokenIn takes the token out of an emailed link, checking the link is
// built from the public URL.
func tokenIn(t *testing.T, e jobs.Email) string {
	t.Helper()
	u, err := url.Parse(linkRe.FindString(e.Text))
	if err != nil || u.Host != "users.example.com" || !strings.HasPrefix(u.Path, "/app/") {
		t.Fatalf("link not built from the public URL: %q", e.Text)
	}
	return u.Query().Get("token")
}

func (b *bundle) registerAndLogin(t *testing.T, email, username string) string {
	t.Helper()
	b.doAs(t, "", `mutation($e: String!, $u: String!) { register(input: {email: $e, username: $u, password: "correct horse battery"}) { accepted } }`,
		map[string]any{"e": email, "u": username})
	r, _ := b.login(t, username, "correct horse battery")
	return loginToken(t, r)
}

// accountEmails returns the verification and reset emails once n arrived
// (the welcome email is not one).
func (b *bundle) accountEmails(t *testing.T, n int) []jobs.Email {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var out []jobs.Email
		for _, e := range b.mail.waitFor(t, 0) {
			if !strings.HasPrefix(e.Subject, "Welcome") {
				out = append(out, e)
			}
		}
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d account emails after 30s, want %d", len(out), n)
		}
		time.Sleep(10 * time.Millisecond) // waiting on the workers
	}
}

func TestTokens_EmailVerification(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{workers: true})
	token := b.registerAndLogin(t, "ada@example.com", "ada")
	req := `mutation { requestEmailVerification { ok } }`
	b.doAs(t, token, req, nil)
	b.doAs(t, token, req, nil)
	emails := b.accountEmails(t, 2)
	tokens := []string{tokenIn(t, emails[0]), tokenIn(t, emails[1])}

	// Only hashes are stored, and the job table holds no token.
	var live []byte
	if err := b.db.Pool.QueryRow(context.Background(), "SELECT token_hash FROM user_tokens WHERE used_at IS NULL").Scan(&live); err != nil {
		t.Fatal(err)
	}
	var args string
	if err := b.db.Pool.QueryRow(context.Background(), "SELECT string_agg(args::text, ' ') FROM river_job").Scan(&args); err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		if strings.Contains(args, tok) {
			t.Fatal("a raw token is in the job table")
		}
	}

	// The later link voided the earlier one: exactly one of them works,
	// and it is the one whose hash is live.
	verify := `mutation($t: String!) { verifyEmail(input: {token: $t}) { ok } }`
	worked := 0
	for _, tok := range tokens {
		sum := sha256.Sum256([]byte(tok))
		r := b.doAs(t, "", verify, map[string]any{"t": tok})
		if len(r.Errors) == 0 {
			worked++
			if string(sum[:]) != string(live) {
				t.Fatal("a voided token worked")
			}
		}
	}
	if worked != 1 {
		t.Fatalf("%d of the two links worked, want exactly the latest", worked)
	}
	if r := b.doAs(t, token, `{ me { emailVerified } }`, nil); !strings.Contains(r.Raw, `"emailVerified":true`) {
		t.Fatalf("after verification: %s", r.Raw)
	}
}

// 50 concurrent uses of one token: exactly one succeeds.
func TestTokens_SingleUseUnderConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{workers: true})
	token := b.registerAndLogin(t, "ada@example.com", "ada")
	b.doAs(t, token, `mutation { requestEmailVerification { ok } }`, nil)
	tok := tokenIn(t, b.accountEmails(t, 1)[0])
	var wg sync.WaitGroup
	results := make([]response, 50)
	for i := range results {
		wg.Go(func() {
			results[i] = b.doAs(t, "", `mutation($t: String!) { verifyEmail(input: {token: $t}) { ok } }`, map[string]any{"t": tok})
		})
	}
	wg.Wait()
	ok := 0
	for _, r := range results {
		if len(r.Errors) == 0 {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 50 concurrent uses succeeded, want 1", ok)
	}
}

func TestTokens_PasswordReset(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Now()}
	b := setupTB(t, setupOpts{now: clock.Now, workers: true})
	session := b.registerAndLogin(t, "ada@example.com", "ada")

	ask := `mutation($e: String!) { requestPasswordReset(input: {email: $e}) { ok } }`
	known := b.doAs(t, "", ask, map[string]any{"e": "ADA@example.com"})
	unknown := b.doAs(t, "", ask, map[string]any{"e": "nobody@example.com"})
	if string(known.Data) != string(unknown.Data) || len(known.Errors)+len(unknown.Errors) != 0 {
		t.Fatalf("reset requests answer differently: %s vs %s", known.Raw, unknown.Raw)
	}
	tok := tokenIn(t, b.accountEmails(t, 1)[0])

	// Many more requests within the minute: still one email (a unique job).
	for range 4 {
		b.doAs(t, "", ask, map[string]any{"e": "ada@example.com"})
	}
	var n int
	if err := b.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM river_job WHERE kind = 'account_email'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("reset jobs after 5 requests in a minute: %d (%v), want 1", n, err)
	}

	reset := `mutation($t: String!, $p: String!) { resetPassword(input: {token: $t, newPassword: $p}) { ok } }`
	if r := b.doAs(t, "", reset, map[string]any{"t": tok, "p": "password123"}); r.errorCode(t) != "BAD_USER_INPUT" {
		t.Fatalf("a common new password: %s", r.Raw)
	}
	// Reset links expire after 30 minutes.
	clock.Advance(31 * time.Minute)
	if r := b.doAs(t, "", reset, map[string]any{"t": tok, "p": "a brand new passphrase"}); r.errorCode(t) != "BAD_USER_INPUT" {
		t.Fatalf("an expired link: %s", r.Raw)
	}
	clock.Advance(-31 * time.Minute)
	if r := b.doAs(t, "", reset, map[string]any{"t": tok, "p": "a brand new passphrase"}); len(r.Errors) > 0 {
		t.Fatalf("resetPassword: %s", r.Raw)
	}
	if r := b.doAs(t, session, `{ me { id } }`, nil); r.errorCode(t) != "UNAUTHENTICATED" {
		t.Fatalf("a session from before the reset: %s", r.Raw)
	}
	if r, _ := b.login(t, "ada", "a brand new passphrase"); len(r.Errors) > 0 {
		t.Fatalf("login with the new password: %s", r.Raw)
	}
}
