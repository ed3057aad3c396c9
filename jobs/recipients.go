package jobs

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/model"
)

// recipientColumns are what an email needs of its recipient.
const recipientColumns = db.UserEmail | db.UserUsername | db.UserDisplayName | db.UserStatus | db.UserEmailVerifiedAt

// recipientTimeout bounds one batch's statement: it runs for several jobs,
// so no one job's context governs it.
const recipientTimeout = 10 * time.Second

// recipients looks up the users of the emails being worked at once, without
// making any of them wait for the others: a lookup starts at once when none
// is running, and those that arrive while one runs go together in the next
// statement (one `= ANY` for the lot). Idle, each email costs one statement,
// as a plain lookup would; busy, a statement serves many. A time window
// would do worse: River's fetches hand out jobs in bursts, and a window
// holds each burst's worker slots while it waits.
type recipients struct {
	byIDs func(ctx context.Context, ids []uuid.UUID) ([]model.User, error)

	mu      sync.Mutex
	pending []*recipientCall
	running bool
}

type recipientCall struct {
	id   uuid.UUID
	done chan struct{}
	user *model.User // nil: gone (deleted, or never was)
	err  error
}

func newRecipients(d *db.DB) *recipients {
	return &recipients{byIDs: func(ctx context.Context, ids []uuid.UUID) ([]model.User, error) {
		return d.Users().ByIDs(ctx, recipientColumns, ids)
	}}
}

// get returns the live user with id, or nil when there is none.
func (r *recipients) get(ctx context.Context, id uuid.UUID) (*model.User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &recipientCall{id: id, done: make(chan struct{})}
	r.mu.Lock()
	r.pending = append(r.pending, c)
	start := !r.running
	r.running = true
	r.mu.Unlock()
	if start {
		go r.run()
	}
	select {
	case <-c.done:
		return c.user, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run looks up what is pending, batch after batch, until nothing is.
func (r *recipients) run() {
	for {
		r.mu.Lock()
		batch := r.pending
		r.pending = nil
		if len(batch) == 0 {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		r.lookup(batch)
	}
}

func (r *recipients) lookup(batch []*recipientCall) {
	ids := make([]uuid.UUID, len(batch))
	for i, c := range batch {
		ids[i] = c.id
	}
	ctx, cancel := context.WithTimeout(context.Background(), recipientTimeout)
	defer cancel()
	users, err := r.byIDs(ctx, ids)
	found := make(map[uuid.UUID]*model.User, len(users))
	for i := range users {
		found[users[i].ID] = &users[i]
	}
	for _, c := range batch {
		if c.err = err; err == nil {
			c.user = found[c.id]
		}
		close(c.done)
	}
}
