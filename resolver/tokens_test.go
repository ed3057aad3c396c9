package resolver_test

import (
	"context"
	"crypto/sha256"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// tokenFrom takes the token out of the last emailed link of a kind, checking
// the link is built from the public URL.
func (b *bundle) tokenFrom(t *testing.T, kind string) string {
	t.Helper()
	sent := b.mail.all()
	for i := len(sent) - 1; i >= 0; i-- {
		if sent[i].Kind != kind {
			continue
		}
		u, err := url.Parse(sent[i].Link)
		if err != nil || u.Host != "users.example.com" || !strings.HasPrefix(u.Path, "/app/") {
			t.Fatalf("link not built from the public URL: %s", sent[i].Link)
		}
		return u.Query().Get("token")
	}
	t.Fatalf("no %s email sent (%d emails)", kind, len(sent))
	return ""
}

func (b *bundle) registerAndLogin(t *testing.T, email, username string) string {
	t.Helper()
	b.doAs(t, "", `mutation($e: String!, $u: String!) { register(input: {email: $e, username: $u, password: "correct horse battery"}) { accepted } }`,
		map[string]any{"e": email, "u": username})
	r, _ := b.login(t, username, "correct horse battery")
	return loginToken(t, r)
}

func TestTokens_EmailVerification(t *testing.T) {
	t.Parallel()
	b := setup(t)
	token := b.registerAndLogin(t, "ada@example.com", "ada")
	req := `mutation { requestEmailVerification { ok } }`
	b.doAs(t, token, req, nil)
	first := b.tokenFrom(t, "verify_email")
	b.doAs(t, token, req, nil)
	second := b.tokenFrom(t, "verify_email")

	// Only the hash is stored.
	var stored []byte
	if err := b.db.Pool.QueryRow(context.Background(), "SELECT token_hash FROM user_tokens WHERE used_at IS NULL").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256([]byte(second)); string(stored) != string(sum[:]) {
		t.Fatal("the stored token is not the SHA-256 of the emailed one")
	}

	verify := `mutation($t: String!) { verifyEmail(input: {token: $t}) { ok } }`
	if r := b.doAs(t, "", verify, map[string]any{"t": first}); r.errorCode(t) != "BAD_USER_INPUT" {
		t.Fatalf("a voided (older) link: %s", r.Raw)
	}
	if r := b.doAs(t, "", verify, map[string]any{"t": second}); len(r.Errors) > 0 {
		t.Fatalf("verifyEmail: %s", r.Raw)
	}
	if r := b.doAs(t, token, `{ me { emailVerified } }`, nil); !strings.Contains(r.Raw, `"emailVerified":true`) {
		t.Fatalf("after verification: %s", r.Raw)
	}
	if r := b.doAs(t, "", verify, map[string]any{"t": second}); r.errorCode(t) != "BAD_USER_INPUT" {
		t.Fatalf("a used link: %s", r.Raw)
	}
}

// 50 concurrent uses of one token: exactly one succeeds.
func TestTokens_SingleUseUnderConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	token := b.registerAndLogin(t, "ada@example.com", "ada")
	b.doAs(t, token, `mutation { requestEmailVerification { ok } }`, nil)
	tok := b.tokenFrom(t, "verify_email")
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
	b := setupTB(t, setupOpts{now: clock.Now})
	session := b.registerAndLogin(t, "ada@example.com", "ada")

	ask := `mutation($e: String!) { requestPasswordReset(input: {email: $e}) { ok } }`
	known := b.doAs(t, "", ask, map[string]any{"e": "ADA@example.com"})
	unknown := b.doAs(t, "", ask, map[string]any{"e": "nobody@example.com"})
	if string(known.Data) != string(unknown.Data) || len(known.Errors)+len(unknown.Errors) != 0 {
		t.Fatalf("reset requests answer differently: %s vs %s", known.Raw, unknown.Raw)
	}
	if n := len(b.mail.all()); n != 1 {
		t.Fatalf("emails after a known and an unknown request: %d, want 1", n)
	}
	tok := b.tokenFrom(t, "reset_password")

	reset := `mutation($t: String!, $p: String!) { resetPassword(input: {token: $t, newPassword: $p}) { ok } }`
	if r := b.doAs(t, "", reset, map[string]any{"t": tok, "p": "password123"}); r.errorCode(t) != "BAD_USER_INPUT" {
		t.Fatalf("a common new password: %s", r.Raw)
	}
	if r := b.doAs(t, "", reset, map[string]any{"t": tok, "p": "a brand new passphrase"}); len(r.Errors) > 0 {
		t.Fatalf("resetPassword: %s", r.Raw)
	}
	if r := b.doAs(t, session, `{ me { id } }`, nil); r.errorCode(t) != "UNAUTHENTICATED" {
		t.Fatalf("a session from before the reset: %s", r.Raw)
	}
	if r, _ := b.login(t, "ada", "a brand new passphrase"); len(r.Errors) > 0 {
		t.Fatalf("login with the new password: %s", r.Raw)
	}

	// Reset links expire after 30 minutes.
	b.doAs(t, "", ask, map[string]any{"e": "ada@example.com"})
	late := b.tokenFrom(t, "reset_password")
	clock.Advance(31 * time.Minute)
	if r := b.doAs(t, "", reset, map[string]any{"t": late, "p": "another new passphrase"}); r.errorCode(t) != "BAD_USER_INPUT" {
		t.Fatalf("an expired link: %s", r.Raw)
	}
}
