package db

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/usergraph/usergraph/model"
)

// Token purposes.
const (
	PurposeVerifyEmail   = "VERIFY_EMAIL"
	PurposeResetPassword = "RESET_PASSWORD"
)

// TokenStore keeps single-use tokens (email verification, password reset)
// as SHA-256 hashes.
type TokenStore struct {
	db *gorm.DB
}

// (Hashes travel as hex: gorm would expand a []byte argument in a VALUES
// list into one parameter per byte.)

// Tokens returns the token store on the pool.
func (d *DB) Tokens() *TokenStore { return &TokenStore{db: d.Gorm} }

// Tokens returns the token store inside the transaction.
func (t *Tx) Tokens() *TokenStore { return &TokenStore{db: t.Gorm} }

// Issue stores a new token for userID and voids the user's older unused
// tokens of the same purpose: only the latest link works. Run it in a
// transaction.
func (s *TokenStore) Issue(ctx context.Context, userID uuid.UUID, purpose string, hash []byte, now time.Time, ttl time.Duration) error {
	// Two issues for one user at once would each void only what was
	// committed before them and leave two live tokens: serialize them.
	if err := s.db.WithContext(ctx).Exec("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
		"user_tokens:"+userID.String()+":"+purpose).Error; err != nil {
		return translate("error locking tokens", err)
	}
	if err := s.db.WithContext(ctx).Exec(`UPDATE user_tokens SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL`,
		now, userID, purpose).Error; err != nil {
		return translate("error voiding older tokens", err)
	}
	return translate("error issuing token", s.db.WithContext(ctx).Exec(`INSERT INTO user_tokens (token_hash, user_id, purpose, created_at, expires_at)
		VALUES (decode(?, 'hex'), ?, ?, ?, ?)`, hex.EncodeToString(hash), userID, purpose, now, now.Add(ttl)).Error)
}

// Consume uses a token: one UPDATE that succeeds for exactly one caller, so
// 50 concurrent uses of one token give one success. It returns the token's
// user, or a BAD_USER_INPUT error for an unknown, used, voided or expired
// token (the same for all, so a token cannot be probed).
func (s *TokenStore) Consume(ctx context.Context, hash []byte, purpose string, now time.Time) (uuid.UUID, error) {
	var ids []uuid.UUID
	err := s.db.WithContext(ctx).Raw(`UPDATE user_tokens t SET used_at = ? FROM users u
		WHERE t.token_hash = decode(?, 'hex') AND t.purpose = ? AND t.used_at IS NULL AND t.expires_at > ?
		  AND u.id = t.user_id AND u.deleted_at IS NULL
		RETURNING t.user_id`, now, hex.EncodeToString(hash), purpose, now).Scan(&ids).Error
	if err != nil {
		return uuid.Nil, translate("error consuming token", err)
	}
	if len(ids) == 0 {
		return uuid.Nil, model.Invalid("input.token", "the link is invalid or has expired; ask for a new one")
	}
	return ids[0], nil
}
