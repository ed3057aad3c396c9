package db

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Maintenance is the upkeep the periodic job runs: partitions, retention
// and purges. Each step is idempotent, so a step that runs twice (two
// leaders for a moment, a retry) does no harm.
type Maintenance struct{ d *DB }

// Maintenance returns the upkeep operations.
func (d *DB) Maintenance() Maintenance { return Maintenance{d: d} }

// EnsureAuditPartitions creates the audit log's monthly partitions up to
// monthsAhead months from now.
func (m Maintenance) EnsureAuditPartitions(ctx context.Context, monthsAhead int) error {
	if _, err := m.d.Pool.Exec(ctx, "SELECT audit_events_ensure_partitions($1)", monthsAhead); err != nil {
		return fmt.Errorf("error creating audit partitions: %w", err)
	}
	return nil
}

// DropAuditPartitions drops the whole months of audit events that ended
// before cutoff and returns their tables.
func (m Maintenance) DropAuditPartitions(ctx context.Context, cutoff time.Time) ([]string, error) {
	rows, err := m.d.Pool.Query(ctx, "SELECT audit_events_drop_partitions($1)", cutoff)
	if err != nil {
		return nil, fmt.Errorf("error dropping audit partitions: %w", err)
	}
	defer rows.Close()
	var dropped []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("error dropping audit partitions: %w", err)
		}
		dropped = append(dropped, name)
	}
	return dropped, rows.Err()
}

// PurgeTokens deletes tokens that expired or were used more than a day ago.
func (m Maintenance) PurgeTokens(ctx context.Context, now time.Time) (int64, error) {
	tag, err := m.d.Pool.Exec(ctx, "DELETE FROM user_tokens WHERE expires_at < $1 OR used_at < $1", now.Add(-24*time.Hour))
	if err != nil {
		return 0, fmt.Errorf("error purging tokens: %w", err)
	}
	return tag.RowsAffected(), nil
}

// PurgeSessions deletes sessions that ended (expired or revoked) before
// cutoff. Ended sessions are kept a while because they tell a known device
// from a new one.
func (m Maintenance) PurgeSessions(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := m.d.Pool.Exec(ctx, "DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1", cutoff)
	if err != nil {
		return 0, fmt.Errorf("error purging sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}

// PurgeDeletedUsers hard-deletes up to limit users whose self-service
// deletion grace period has passed, each with an audit event in the same
// transaction; their sessions, tokens, roles and memberships go with them
// (ON DELETE CASCADE). It returns the ids it deleted.
func (m Maintenance) PurgeDeletedUsers(ctx context.Context, now time.Time, limit int) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	err := m.d.InTx(ctx, func(tx *Tx) error {
		if err := tx.Gorm.WithContext(ctx).Raw(`DELETE FROM users WHERE id IN (
			SELECT id FROM users WHERE purge_after < ? AND deleted_at IS NOT NULL ORDER BY purge_after LIMIT ? FOR UPDATE SKIP LOCKED)
			RETURNING id`, now, limit).Scan(&ids).Error; err != nil {
			return translate("error purging users", err)
		}
		for _, id := range ids {
			target, kind := id, "User"
			if err := tx.Audit().Record(ctx, &AuditEvent{OccurredAt: now, Action: "user.purge", TargetType: &kind, TargetID: &target}); err != nil {
				return err
			}
		}
		return nil
	})
	return ids, err
}
