package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/db/dbtest"
	"github.com/usergraph/usergraph/jobs"
	"github.com/usergraph/usergraph/model"
)

// Emails worked at once share their recipients' lookups, and each still
// gets its own recipient: the live user, or nobody when the user was
// deleted or never existed.
func TestRecipients_ConcurrentLookupsShareStatements(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	ctx := context.Background()
	want := map[uuid.UUID]string{} // id -> email; "" for nobody
	for i := range 40 {
		u, err := d.Users().Create(ctx, model.NewUser{Email: fmt.Sprintf("r%d@example.com", i), Username: fmt.Sprintf("r%d", i)}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		want[u.ID] = u.Email
		if i%8 == 0 {
			if err := d.Users().SoftDelete(ctx, u.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
			want[u.ID] = ""
		}
	}
	for range 10 {
		want[uuid.New()] = ""
	}
	get, statements := jobs.RecipientsOn(d)

	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[uuid.UUID]string{}
	for id := range want {
		wg.Go(func() {
			<-start
			u, err := get(ctx, id)
			if err != nil {
				t.Errorf("lookup of %s: %v", id, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if u != nil {
				if u.ID != id {
					t.Errorf("lookup of %s returned user %s", id, u.ID)
				}
				got[id] = u.Email
			} else {
				got[id] = ""
			}
		})
	}
	close(start)
	wg.Wait()
	for id, email := range want {
		if got[id] != email {
			t.Errorf("recipient of %s: got %q, want %q", id, got[id], email)
		}
	}
	if n := statements(); n < 1 || n > int64(len(want))/2 {
		t.Errorf("%d lookups took %d statements; want them batched", len(want), n)
	}

	// Alone, a lookup is one statement of its own, started at once.
	before := statements()
	for id, email := range want {
		if email == "" {
			continue
		}
		u, err := get(ctx, id)
		if err != nil || u == nil || u.Email != email {
			t.Fatalf("lone lookup: %v, %v", u, err)
		}
		break
	}
	if n := statements() - before; n != 1 {
		t.Errorf("a lone lookup took %d statements, want 1", n)
	}
}

// A job whose context ends stops waiting for its recipient; the lookup it
// shared still answers the others.
func TestRecipients_ACanceledLookupReturnsItsContextError(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	u, err := d.Users().Create(context.Background(), model.NewUser{Email: "ada@example.com", Username: "ada"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	get, _ := jobs.RecipientsOn(d)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := get(ctx, u.ID); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled lookup: got %v, want context.Canceled", err)
	}
	got, err := get(context.Background(), u.ID)
	if err != nil || got == nil || got.Email != "ada@example.com" {
		t.Fatalf("lookup after a canceled one: %v, %v", got, err)
	}
}
