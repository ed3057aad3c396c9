package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"gorm.io/gorm"

	"github.com/usergraph/usergraph/model"
)

// Export kinds and formats, as stored.
const (
	ExportUsers  = "USERS"
	ExportMyData = "MY_DATA"
)

// Export is a requested export: its file's progress and expiry. The River
// job (JobID) holds its state, attempts and errors.
type Export struct {
	ID          uuid.UUID       `gorm:"column:id;primaryKey"`
	JobID       int64           `gorm:"column:job_id"`
	RequestedBy uuid.UUID       `gorm:"column:requested_by"`
	Kind        string          `gorm:"column:kind"`
	Format      string          `gorm:"column:format"`
	Filter      json.RawMessage `gorm:"column:filter"`
	RowsTotal   *int64          `gorm:"column:rows_total"`
	RowsDone    int64           `gorm:"column:rows_done"`
	Bytes       int64           `gorm:"column:bytes"`
	CreatedAt   time.Time       `gorm:"column:created_at"`
	FinishedAt  *time.Time      `gorm:"column:finished_at"`
	ExpiresAt   time.Time       `gorm:"column:expires_at"`
}

// TableName tells gorm the table.
func (Export) TableName() string { return "exports" }

// ExportStore keeps export records.
type ExportStore struct{ db *gorm.DB }

// Exports returns the export store on the pool.
func (d *DB) Exports() *ExportStore { return &ExportStore{db: d.Gorm} }

// Exports returns the export store inside the transaction.
func (t *Tx) Exports() *ExportStore { return &ExportStore{db: t.Gorm} }

// Create records a new export.
func (s *ExportStore) Create(ctx context.Context, e *Export) error {
	if len(e.Filter) == 0 {
		e.Filter = json.RawMessage("{}")
	}
	return translate("error recording export", s.db.WithContext(ctx).Create(e).Error)
}

// ByID returns an export; NOT_FOUND when there is none.
func (s *ExportStore) ByID(ctx context.Context, id uuid.UUID) (*Export, error) {
	var e Export
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&e).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, model.NotFound("export")
	}
	return &e, translate("error reading export", err)
}

// ByJobIDs returns the exports of the given jobs, in no particular order.
func (s *ExportStore) ByJobIDs(ctx context.Context, jobIDs []int64) ([]Export, error) {
	var rows []Export
	if len(jobIDs) == 0 {
		return nil, nil
	}
	err := s.db.WithContext(ctx).Where("job_id = ANY(?)", pq.Int64Array(jobIDs)).Find(&rows).Error
	return rows, translate("error reading exports", err)
}

// Progress records how far a running export got. A retry starts over, so
// it also resets the counts.
func (s *ExportStore) Progress(ctx context.Context, id uuid.UUID, total *int64, done, bytes int64) error {
	return translate("error recording export progress", s.db.WithContext(ctx).
		Exec("UPDATE exports SET rows_total = coalesce(?, rows_total), rows_done = ?, bytes = ? WHERE id = ?", total, done, bytes, id).Error)
}

// Finish marks an export's file complete.
func (s *ExportStore) Finish(ctx context.Context, id uuid.UUID, done, bytes int64, now time.Time) error {
	return translate("error finishing export", s.db.WithContext(ctx).
		Exec("UPDATE exports SET rows_total = ?, rows_done = ?, bytes = ?, finished_at = ? WHERE id = ?", done, done, bytes, now, id).Error)
}

// Expired returns up to limit exports whose files are past their expiry.
func (s *ExportStore) Expired(ctx context.Context, now time.Time, limit int) ([]Export, error) {
	var rows []Export
	err := s.db.WithContext(ctx).Where("expires_at < ?", now).Order("expires_at").Limit(limit).Find(&rows).Error
	return rows, translate("error reading expired exports", err)
}

// Delete removes an export's record (its file is removed first).
func (s *ExportStore) Delete(ctx context.Context, id uuid.UUID) error {
	return translate("error deleting export", s.db.WithContext(ctx).Exec("DELETE FROM exports WHERE id = ?", id).Error)
}

// ExportedUser is one row of a user export.
type ExportedUser struct {
	ID              uuid.UUID        `gorm:"column:id" json:"-"`
	Email           string           `gorm:"column:email" json:"email"`
	Username        string           `gorm:"column:username" json:"username"`
	DisplayName     string           `gorm:"column:display_name" json:"displayName"`
	Status          model.UserStatus `gorm:"column:status" json:"status"`
	EmailVerifiedAt *time.Time       `gorm:"column:email_verified_at" json:"emailVerifiedAt"`
	LastLoginAt     *time.Time       `gorm:"column:last_login_at" json:"lastLoginAt"`
	CreatedAt       time.Time        `gorm:"column:created_at" json:"createdAt"`
	Roles           string           `gorm:"column:roles" json:"-"` // names joined with ';'
}

// StreamUsers calls fn for every live user matching f, in creation order,
// without holding them in memory: the rows come off the wire one by one.
// fn's *ExportedUser is reused between calls.
func (s *UserStore) StreamUsers(ctx context.Context, f model.UserFilter, fn func(*ExportedUser) error) error {
	// One statement reads every user while the file is written, for as
	// long as that takes: a million users outlast the per-statement
	// timeout meant for API reads. The job's own timeout (its context)
	// bounds it instead, and the transaction gives the file one snapshot.
	return translate("error exporting users", s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SET LOCAL statement_timeout = 0").Error; err != nil {
			return err
		}
		rows, err := (&UserStore{db: tx}).filtered(ctx, f).Select(`u.id, u.email, u.username, u.display_name, u.status, u.email_verified_at,
			u.last_login_at, u.created_at,
			coalesce((SELECT string_agg(r.name, ';' ORDER BY r.name) FROM user_roles ur JOIN roles r ON r.id = ur.role_id
			          WHERE ur.user_id = u.id), '') AS roles`).Order("u.created_at, u.id").Rows()
		if err != nil {
			return err
		}
		defer rows.Close()
		var u ExportedUser
		for rows.Next() {
			u = ExportedUser{}
			if err := rows.Scan(&u.ID, &u.Email, &u.Username, &u.DisplayName, &u.Status, &u.EmailVerifiedAt,
				&u.LastLoginAt, &u.CreatedAt, &u.Roles); err != nil {
				return fmt.Errorf("error reading exported user: %w", err)
			}
			if err := fn(&u); err != nil {
				return err
			}
		}
		return rows.Err()
	}))
}

// PersonalData is everything stored about one user, as a JSON document built
// by PostgreSQL in one statement: profile (never the password hash), roles,
// group memberships, sessions and the audit events they caused or that
// concern them.
func (d *DB) PersonalData(ctx context.Context, userID uuid.UUID) ([]byte, error) {
	var doc []byte
	err := d.Pool.QueryRow(ctx, `SELECT json_build_object(
		'exportedAt', now(),
		'profile', (SELECT json_build_object('email', email, 'username', username, 'displayName', display_name,
			'status', status, 'emailVerifiedAt', email_verified_at, 'lastLoginAt', last_login_at,
			'createdAt', created_at, 'updatedAt', updated_at) FROM users WHERE id = $1),
		'roles', coalesce((SELECT json_agg(json_build_object('name', r.name, 'assignedAt', ur.assigned_at) ORDER BY r.name)
			FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE ur.user_id = $1), '[]'),
		'groups', coalesce((SELECT json_agg(json_build_object('name', g.name, 'role', gm.role, 'joinedAt', gm.joined_at) ORDER BY g.name)
			FROM group_members gm JOIN groups g ON g.id = gm.group_id WHERE gm.user_id = $1), '[]'),
		'sessions', coalesce((SELECT json_agg(json_build_object('userAgent', user_agent, 'ip', ip, 'createdAt', created_at,
			'lastSeenAt', last_seen_at, 'expiresAt', expires_at, 'revokedAt', revoked_at) ORDER BY created_at)
			FROM sessions WHERE user_id = $1), '[]'),
		'auditEvents', coalesce((SELECT json_agg(json_build_object('action', action, 'occurredAt', occurred_at,
			'byYou', actor_id = $1, 'ip', ip, 'userAgent', user_agent) ORDER BY occurred_at)
			FROM audit_events WHERE actor_id = $1 OR target_id = $1), '[]'))`, userID).Scan(&doc)
	if err != nil {
		return nil, fmt.Errorf("error reading personal data: %w", err)
	}
	return doc, nil
}
