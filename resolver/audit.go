package resolver

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/graph"
	"github.com/usergraph/usergraph/model"
)

// change is what a write records in the audit log.
type change struct {
	action string
	kind   model.Kind
	target uuid.UUID
	meta   map[string]any // no secrets, ever
}

// write runs fn in a transaction and appends the audit event it returns in
// the same transaction: the change and its record commit or roll back
// together. The actor, address and user agent come from the request.
func (r *Resolver) write(ctx context.Context, fn func(tx *db.Tx) (change, error)) error {
	return r.db.InTx(ctx, func(tx *db.Tx) error {
		c, err := fn(tx)
		if err != nil {
			return err
		}
		return tx.Audit().Record(ctx, r.auditEvent(ctx, c))
	})
}

// recordOutsideTx appends an event that has no transaction to join (a failed
// login changes nothing else).
func (r *Resolver) recordOutsideTx(ctx context.Context, c change) error {
	return r.db.Audit().Record(ctx, r.auditEvent(ctx, c))
}

func (r *Resolver) auditEvent(ctx context.Context, c change) *db.AuditEvent {
	req := auth.RequestFrom(ctx)
	e := &db.AuditEvent{OccurredAt: r.now(), Action: c.action, UserAgent: truncateUTF8(req.UserAgent, 512)}
	if v := auth.EffectiveViewer(ctx); v != nil {
		e.ActorID = &v.UserID
	}
	if c.target != uuid.Nil {
		kind := string(c.kind)
		e.TargetType, e.TargetID = &kind, &c.target
	}
	if req.IP != "" {
		e.IP = &req.IP
	}
	if len(c.meta) > 0 {
		e.Metadata, _ = json.Marshal(c.meta)
	}
	return e
}

func truncateUTF8(s string, n int) string {
	return strings.ToValidUTF8(s[:min(len(s), n)], "")
}

// auditLogFailure reports an audit write that failed where the request
// itself must not fail (a failed login still answers "invalid credentials").
func (r *Resolver) auditLogFailure(ctx context.Context, err error) {
	r.log.ErrorContext(ctx, "audit event not recorded", "request_id", RequestID(ctx), "err", err)
}

func auditFilter(f *graph.AuditEventFilter) (db.AuditFilter, error) {
	var out db.AuditFilter
	if f == nil {
		return out, nil
	}
	if f.Actor != nil {
		id, err := model.ParseGlobalIDOf("filter.actor", model.KindUser, *f.Actor)
		if err != nil {
			return out, err
		}
		out.ActorID = &id
	}
	if f.Target != nil {
		_, id, err := model.ParseGlobalID("filter.target", *f.Target)
		if err != nil {
			return out, err
		}
		out.TargetID = &id
	}
	if f.Action != nil {
		if len(*f.Action) > 64 {
			return out, model.Invalid("filter.action", "at most 64 characters")
		}
		out.Action = *f.Action
	}
	out.From, out.To = f.From, f.To
	return out, nil
}
