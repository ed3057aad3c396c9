package db

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"gorm.io/gorm"

	"github.com/usergraph/usergraph/model"
)

// SessionStore reads and writes login sessions. Tokens never reach it: only
// their SHA-256.
type SessionStore struct {
	db *gorm.DB
}

// Sessions returns the session store on the pool.
func (d *DB) Sessions() *SessionStore { return &SessionStore{db: d.Gorm} }

// Sessions returns the session store inside the transaction.
func (t *Tx) Sessions() *SessionStore { return &SessionStore{db: t.Gorm} }

// Session is one login session.
type Session struct {
	ID         uuid.UUID  `gorm:"column:id;primaryKey"`
	UserID     uuid.UUID  `gorm:"column:user_id"`
	TokenHash  []byte     `gorm:"column:token_hash"`
	UserAgent  string     `gorm:"column:user_agent"`
	IP         *string    `gorm:"column:ip"`
	CreatedAt  time.Time  `gorm:"column:created_at"`
	LastSeenAt time.Time  `gorm:"column:last_seen_at"`
	ExpiresAt  time.Time  `gorm:"column:expires_at"`
	RevokedAt  *time.Time `gorm:"column:revoked_at"`
}

// TableName tells gorm the table.
func (Session) TableName() string { return "sessions" }

// Create stores a new session and revokes the user's oldest live sessions
// beyond maxPerUser. It returns the token hashes it revoked, for the cache.
//
// Call it in a transaction: it locks the user's row until the end of it, so
// that logins of one user evict one after another. Two evictions at once
// would each skip the other's new session (not yet committed) and lock old
// ones in different orders: too many live sessions, or a deadlock.
func (s *SessionStore) Create(ctx context.Context, sess *Session, maxPerUser int) ([][]byte, error) {
	if err := s.db.WithContext(ctx).Exec(`SELECT FROM users WHERE id = ? FOR NO KEY UPDATE`, sess.UserID).Error; err != nil {
		return nil, translate("error locking the user's sessions", err)
	}
	if err := s.db.WithContext(ctx).Create(sess).Error; err != nil {
		return nil, translate("error creating session", err)
	}
	var evicted [][]byte
	err := s.db.WithContext(ctx).Raw(`UPDATE sessions SET revoked_at = ? WHERE id IN (
			SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NULL
			ORDER BY created_at DESC, id DESC OFFSET ?)
		RETURNING token_hash`, sess.CreatedAt, sess.UserID, maxPerUser).Scan(&evicted).Error
	return evicted, translate("error evicting old sessions", err)
}

// SessionView is a live session with what authorization needs of its user.
type SessionView struct {
	ID          uuid.UUID      `gorm:"column:id"`
	UserID      uuid.UUID      `gorm:"column:user_id"`
	LastSeenAt  time.Time      `gorm:"column:last_seen_at"`
	ExpiresAt   time.Time      `gorm:"column:expires_at"`
	Permissions pq.StringArray `gorm:"column:permissions;type:text[]"`
}

// Lookup returns the live session with tokenHash: not revoked, not past its
// absolute end, seen after idleSince, of an ACTIVE, not deleted user. Nil
// when there is none. One statement, permissions included.
// It reads the primary: a replica a moment behind could still show a revoked
// session.
func (s *SessionStore) Lookup(ctx context.Context, tokenHash []byte, now, idleSince time.Time) (*SessionView, error) {
	var v SessionView
	err := s.db.WithContext(OnPrimary(ctx)).Raw(`SELECT s.id, s.user_id, s.last_seen_at, s.expires_at,
			ARRAY(SELECT DISTINCT p FROM user_roles ur JOIN roles r ON r.id = ur.role_id, unnest(r.permissions) p
			      WHERE ur.user_id = s.user_id ORDER BY p) AS permissions
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ? AND s.last_seen_at > ?
		  AND u.deleted_at IS NULL AND u.status = 'ACTIVE'`, tokenHash, now, idleSince).Take(&v).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, translate("error looking up session", err)
	}
	return &v, nil
}

// Touch records activity on a session (for the idle timeout).
func (s *SessionStore) Touch(ctx context.Context, id uuid.UUID, now time.Time) error {
	return translate("error touching session", s.db.WithContext(ctx).
		Exec("UPDATE sessions SET last_seen_at = ? WHERE id = ? AND revoked_at IS NULL", now, id).Error)
}

// Revoke ends one session; when owner is set it must belong to that user.
// It returns the revoked token hash, or NOT_FOUND.
func (s *SessionStore) Revoke(ctx context.Context, id uuid.UUID, owner *uuid.UUID, now time.Time) ([]byte, error) {
	var hashes [][]byte
	err := s.db.WithContext(ctx).Raw(`UPDATE sessions SET revoked_at = ?
		WHERE id = ? AND revoked_at IS NULL AND (?::uuid IS NULL OR user_id = ?::uuid)
		RETURNING token_hash`, now, id, owner, owner).Scan(&hashes).Error
	if err != nil {
		return nil, translate("error revoking session", err)
	}
	if len(hashes) == 0 {
		return nil, model.NotFound("session")
	}
	return hashes[0], nil
}

// RevokeAll ends every live session of a user and returns their token
// hashes.
func (s *SessionStore) RevokeAll(ctx context.Context, userID uuid.UUID, now time.Time) ([][]byte, error) {
	var hashes [][]byte
	err := s.db.WithContext(ctx).Raw("UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL RETURNING token_hash",
		now, userID).Scan(&hashes).Error
	return hashes, translate("error revoking sessions", err)
}

// ListLive returns one page of a user's live sessions, newest last.
func (s *SessionStore) ListLive(ctx context.Context, userID uuid.UUID, now time.Time, p Page) (Window[Session], error) {
	key := sortKey{Tag: "sessions", Column: "s.created_at", IDCol: "s.id", Time: true}
	sk, err := p.seek(key, model.Asc)
	if err != nil {
		return Window[Session]{}, err
	}
	q := s.db.WithContext(ctx).Table("sessions AS s").
		Where("s.user_id = ? AND s.revoked_at IS NULL AND s.expires_at > ?", userID, now)
	q = sk.where(q)
	var rows []Session
	if err := q.Order(sk.orderBy).Limit(sk.limit).Find(&rows).Error; err != nil {
		return Window[Session]{}, translate("error listing sessions", err)
	}
	return window(rows, p, key, func(s *Session) (any, uuid.UUID) { return s.CreatedAt, s.ID }), nil
}

// Credentials is what login needs of a user.
type Credentials struct {
	ID           uuid.UUID        `gorm:"column:id"`
	PasswordHash *string          `gorm:"column:password_hash"`
	Status       model.UserStatus `gorm:"column:status"`
	// PendingDeletion: the user deleted their account and may still log in
	// to cancel it.
	PendingDeletion bool `gorm:"column:pending_deletion"`
}

// CredentialsFor finds a live user by email or username (ignoring case);
// nil when there is none.
func (s *UserStore) CredentialsFor(ctx context.Context, identifier string) (*Credentials, error) {
	var c Credentials
	// A self-deleted account inside its grace period still logs in: that
	// is how its owner cancels the deletion.
	err := s.db.WithContext(ctx).Raw(`SELECT id, password_hash, status, purge_after IS NOT NULL AS pending_deletion FROM users
		WHERE (deleted_at IS NULL OR purge_after > now()) AND (email = ? OR lower(username) = lower(?)) LIMIT 1`,
		normalizeEmail(identifier), identifier).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, translate("error reading credentials", err)
	}
	return &c, nil
}

// PasswordHash returns a live user's password hash (nil when none is set).
func (s *UserStore) PasswordHash(ctx context.Context, id uuid.UUID) (*string, error) {
	var c Credentials
	err := s.db.WithContext(ctx).Raw("SELECT id, password_hash, status FROM users WHERE id = ? AND deleted_at IS NULL", id).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, model.NotFound("user")
	}
	if err != nil {
		return nil, translate("error reading credentials", err)
	}
	return c.PasswordHash, nil
}

// SetPassword stores a new password hash.
func (s *UserStore) SetPassword(ctx context.Context, id uuid.UUID, hash string, now time.Time) error {
	res := s.db.WithContext(ctx).Exec("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL", hash, now, id)
	if res.Error != nil {
		return translate("error setting password", res.Error)
	}
	if res.RowsAffected == 0 {
		return model.NotFound("user")
	}
	return nil
}

// RecordLogin stamps last_login_at.
func (s *UserStore) RecordLogin(ctx context.Context, id uuid.UUID, now time.Time) error {
	return translate("error recording login", s.db.WithContext(ctx).
		Exec("UPDATE users SET last_login_at = ? WHERE id = ?", now, id).Error)
}

// ByID returns a session whatever its state (a notice about a sign-in reads
// where it came from); NOT_FOUND when it is gone.
func (s *SessionStore) ByID(ctx context.Context, id uuid.UUID) (*Session, error) {
	var sess Session
	err := s.db.WithContext(ctx).Select("id", "user_id", "user_agent", "ip", "created_at", "last_seen_at", "expires_at", "revoked_at").
		Where("id = ?", id).Take(&sess).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, model.NotFound("session")
	}
	if err != nil {
		return nil, translate("error reading session", err)
	}
	return &sess, nil
}

// KnownDevice reports whether the user has signed in before with this user
// agent (in a session other than except), which decides whether a sign-in
// deserves a "new sign-in" notice.
func (s *SessionStore) KnownDevice(ctx context.Context, userID uuid.UUID, userAgent string, except uuid.UUID) (bool, error) {
	var known bool
	err := s.db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM sessions WHERE user_id = ? AND user_agent = ? AND id <> ?)`,
		userID, userAgent, except).Scan(&known).Error
	return known, translate("error reading sessions", err)
}
