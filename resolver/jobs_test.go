package resolver_test

import (
	"context"
	"testing"
)

func (b *bundle) jobCount(t *testing.T, kind string) int {
	t.Helper()
	var n int
	if err := b.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM river_job WHERE kind = $1", kind).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The welcome email is enqueued in the transaction that creates the user: a
// created user has exactly one, a rolled-back creation none.
func TestJobs_WelcomeEmailEnqueuedWithTheUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createUser(t, "ada@example.com", "ada")
	if n := b.jobCount(t, "welcome_email"); n != 1 {
		t.Fatalf("welcome jobs after createUser: %d, want 1", n)
	}
	r := b.do(t, `mutation { createUser(input: {email: "ADA@example.com", username: "ada2"}) { user { id } } }`, nil)
	if r.errorCode(t) != "CONFLICT" {
		t.Fatalf("duplicate createUser: %s", r.Raw)
	}
	b.doAs(t, "", `mutation { register(input: {email: "bob@example.com", username: "bob", password: "correct horse battery"}) { accepted } }`, nil)
	b.doAs(t, "", `mutation { register(input: {email: "BOB@example.com", username: "bob2", password: "correct horse battery"}) { accepted } }`, nil)
	if n := b.jobCount(t, "welcome_email"); n != 2 {
		t.Fatalf("welcome jobs after a failed create and a repeated registration: %d, want 2", n)
	}
	var users int
	if err := b.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM users").Scan(&users); err != nil || users != 2 {
		t.Fatalf("users: %d (%v)", users, err)
	}
}
