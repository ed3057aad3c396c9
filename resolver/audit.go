package resolver

import (
	"context"
	"encoding/json"

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
	return r.writeTx(ctx, false, fn)
}

// writeKeepingAnAdmin is write for changes that could remove the last
// administrator (a deactivation, a deletion, a revoked role, a role losing
// its permissions): it takes a lock first, so two admins demoting each other
// at once are serialized, and refuses the change when afterwards no active
// user could manage roles any more.
func (r *Resolver) writeKeepingAnAdmin(ctx context.Context, fn func(tx *db.Tx) (change, error)) error {
	return r.writeTx(ctx, true, fn)
}

func (r *Resolver) writeTx(ctx context.Context, keepAdmin bool, fn func(tx *db.Tx) (change, error)) error {
	var tags []string
	err := r.db.InTx(ctx, func(tx *db.Tx) error {
		var before int64
		if keepAdmin {
			if err := tx.Roles().LockAdmins(ctx); err != nil {
				return err
			}
			var err error
			if before, err = tx.Roles().CountAdmins(ctx, auth.PermRolesManage); err != nil {
				return err
			}
		}
		c, err := fn(tx)
		if err != nil {
			return err
		}
		if keepAdmin && before > 0 {
			after, err := tx.Roles().CountAdmins(ctx, auth.PermRolesManage)
			if err != nil {
				return err
			}
			if after == 0 {
				return errLastAdmin
			}
		}
		if tags, err = changeTags(ctx, tx, c); err != nil {
			return err
		}
		return tx.Audit().Record(ctx, r.auditEvent(ctx, c))
	})
	if err == nil {
		r.invalidate(ctx, tags...)
	}
	return err
}

var errLastAdmin = &model.Error{Code: model.CodeConflict,
	Message: "this would leave no active administrator (a user who can manage roles)"}

// recordOutsideTx appends an event that has no transaction to join (a failed
// login changes nothing else).
func (r *Resolver) recordOutsideTx(ctx context.Context, c change) error {
	return r.db.Audit().Record(ctx, r.auditEvent(ctx, c))
}

func (r *Resolver) auditEvent(ctx context.Context, c change) *db.AuditEvent {
	req := auth.RequestFrom(ctx)
	e := &db.AuditEvent{OccurredAt: r.now(), Action: c.action, UserAgent: req.UserAgent}
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
