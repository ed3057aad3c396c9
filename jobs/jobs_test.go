package jobs_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/db/dbtest"
	"github.com/usergraph/usergraph/jobs"
	"github.com/usergraph/usergraph/model"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// outbox records sent emails on a channel.
type outbox chan jobs.Email

func (o outbox) Send(_ context.Context, e jobs.Email) error {
	o <- e
	return nil
}

// A committed user gets their welcome email from a worker; a rolled-back
// one never does.
func TestWelcome_WorkerSendsForCommittedUsersOnly(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	ctx := context.Background()
	sent := make(outbox, 10)
	public, _ := url.Parse("https://users.example.com")
	work, err := jobs.New(d, sent, jobs.Config{Workers: true, PublicURL: public, ExportDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := work.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = work.Stop(stopCtx)
	})

	rollback := d.InTx(ctx, func(tx *db.Tx) error {
		u, err := tx.Users().Create(ctx, model.NewUser{Email: "ghost@example.com", Username: "ghost"}, time.Now())
		if err != nil {
			return err
		}
		if err := work.WelcomeTx(ctx, tx, u.ID); err != nil {
			return err
		}
		return errRollback
	})
	if rollback != errRollback {
		t.Fatal(rollback)
	}
	if err := d.InTx(ctx, func(tx *db.Tx) error {
		u, err := tx.Users().Create(ctx, model.NewUser{Email: "ada@example.com", Username: "ada", DisplayName: "Ada"}, time.Now())
		if err != nil {
			return err
		}
		return work.WelcomeTx(ctx, tx, u.ID)
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-sent:
		if e.To != "ada@example.com" || e.Subject == "" {
			t.Fatalf("welcome email: %+v", e)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no welcome email within 30s")
	}
	var ghost int
	if err := d.Pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE kind = 'welcome_email'").Scan(&ghost); err != nil || ghost != 1 {
		t.Fatalf("jobs in the table: %d (%v), want 1: the rolled-back user's job must not exist", ghost, err)
	}
}

type rollbackErr struct{}

func (rollbackErr) Error() string { return "roll back" }

var errRollback error = rollbackErr{}
