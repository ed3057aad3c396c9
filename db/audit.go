package db

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/usergraph/usergraph/model"
)

// AuditStore appends to and reads the audit log. It has no update or delete:
// the table refuses them anyway.
type AuditStore struct {
	db *gorm.DB
}

// Audit returns the audit store on the pool (for events that change nothing
// else, such as a failed login).
func (d *DB) Audit() *AuditStore { return &AuditStore{db: d.Gorm} }

// Audit returns the audit store inside the transaction, so an event commits
// or rolls back with the change it records.
func (t *Tx) Audit() *AuditStore { return &AuditStore{db: t.Gorm} }

// AuditEvent is one entry of the audit log.
type AuditEvent = model.AuditEvent

// Record appends an event. Metadata must hold no secrets.
func (s *AuditStore) Record(ctx context.Context, e *AuditEvent) error {
	if e.ID == uuid.Nil {
		e.ID = uuid.Must(uuid.NewV7())
	}
	if len(e.Metadata) == 0 {
		e.Metadata = json.RawMessage("{}")
	}
	e.OccurredAt = e.OccurredAt.Truncate(time.Microsecond)
	return translate("error recording audit event", s.db.WithContext(ctx).Create(e).Error)
}

// AuditFilter narrows the audit log; zero fields do not filter.
type AuditFilter struct {
	ActorID  *uuid.UUID
	TargetID *uuid.UUID
	Action   string
	From, To *time.Time
}

// AuditList is the cursor tag of the audit log, newest first.
const AuditList = "audit"

// List returns one page of events, newest first. A time range lets
// PostgreSQL skip the months outside it.
func (s *AuditStore) List(ctx context.Context, f AuditFilter, p Page) (Window[AuditEvent], error) {
	key := sortKey{Tag: AuditList, Column: "a.occurred_at", IDCol: "a.id", Time: true}
	sk, err := p.seek(key, model.Desc)
	if err != nil {
		return Window[AuditEvent]{}, err
	}
	q := s.listQuery(ctx, f)
	q = sk.where(q)
	var rows []AuditEvent
	if err := q.Order(sk.orderBy).Limit(sk.limit).Find(&rows).Error; err != nil {
		return Window[AuditEvent]{}, translate("error listing audit events", err)
	}
	return window(rows, p, key, func(e *AuditEvent) (any, uuid.UUID) { return e.OccurredAt, e.ID }), nil
}

func (s *AuditStore) listQuery(ctx context.Context, f AuditFilter) *gorm.DB {
	q := s.db.WithContext(ctx).Table("audit_events AS a")
	if f.ActorID != nil {
		q = q.Where("a.actor_id = ?", *f.ActorID)
	}
	if f.TargetID != nil {
		q = q.Where("a.target_id = ?", *f.TargetID)
	}
	if f.Action != "" {
		q = q.Where("a.action = ?", f.Action)
	}
	if f.From != nil {
		q = q.Where("a.occurred_at >= ?", *f.From)
	}
	if f.To != nil {
		q = q.Where("a.occurred_at < ?", *f.To)
	}
	return q
}
