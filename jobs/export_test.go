package jobs

import (
	"context"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/model"
)

// FetchCooldown is how often a queue may be fetched, as New configures
// River: benchmarks of River alone use the same.
const FetchCooldown = fetchCooldown

// RecipientsOn returns the recipient lookup the mailer uses, on d, and a
// count of the statements it has run.
func RecipientsOn(d *db.DB) (get func(context.Context, uuid.UUID) (*model.User, error), statements func() int64) {
	r := newRecipients(d)
	var n atomic.Int64
	byIDs := r.byIDs
	r.byIDs = func(ctx context.Context, ids []uuid.UUID) ([]model.User, error) {
		n.Add(1)
		return byIDs(ctx, ids)
	}
	return r.get, n.Load
}
