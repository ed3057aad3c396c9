package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/db/dbtest"
	"github.com/usergraph/usergraph/model"
	"github.com/usergraph/usergraph/seed"
)

// An export reads every user in one statement for as long as writing the
// file takes. The per-statement timeout, meant for API reads, must not end
// it: a million users take longer than its 10 seconds. (The job's own
// timeout bounds the export.)
func TestStreamUsers_OutlivesTheStatementTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	seeding, err := db.Open(ctx, db.Config{URL: url, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer seeding.Close()
	const users = 20_000
	if _, err := seed.Run(ctx, seeding.Pool, seed.Options{Users: users}); err != nil {
		t.Fatal(err)
	}
	d, err := db.Open(ctx, db.Config{URL: url, MaxConns: 2, StatementTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	var n int
	start := time.Now()
	err = d.Users().StreamUsers(ctx, model.UserFilter{}, func(*db.ExportedUser) error {
		if n++; n%1000 == 0 {
			time.Sleep(5 * time.Millisecond) // a slow disk: the whole export outlasts the timeout
		}
		return nil
	})
	if err != nil || n != users {
		t.Fatalf("streamed %d of %d users in %s: %v", n, users, time.Since(start), err)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Fatalf("the export took %s: not longer than the statement timeout, so this proves nothing", took)
	}
}
