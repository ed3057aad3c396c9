package resolver

import (
	"context"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/model"
)

// Mailer delivers account emails. The token travels only inside the link,
// never in logs or the database.
type Mailer interface {
	SendAccountEmail(ctx context.Context, m AccountEmail) error
}

// AccountEmail is one email carrying an action link.
type AccountEmail struct {
	To   string
	Kind string // "verify_email" or "reset_password"
	Link string
}

// Lifetimes of emailed tokens.
const (
	verifyTokenTTL = 24 * time.Hour
	resetTokenTTL  = 30 * time.Minute
)

// link builds an action link from the configured public base URL, never
// from the request's Host header (which an attacker controls).
func (r *Resolver) link(path, token string) string {
	u := *r.publicURL
	u.Path = u.Path + path
	u.RawQuery = url.Values{"token": {token}}.Encode()
	return u.String()
}

// issueAndSend stores a new token for the user (voiding older ones) and
// emails its link once the token is committed.
func (r *Resolver) issueAndSend(ctx context.Context, userID uuid.UUID, to, purpose, kind, path string, ttl time.Duration, action string) error {
	token, hash, err := auth.NewToken()
	if err != nil {
		return err
	}
	if err := r.write(ctx, func(tx *db.Tx) (change, error) {
		return change{action, model.KindUser, userID, nil}, tx.Tokens().Issue(ctx, userID, purpose, hash, r.now(), ttl)
	}); err != nil {
		return err
	}
	if err := r.mailer.SendAccountEmail(ctx, AccountEmail{To: to, Kind: kind, Link: r.link(path, token)}); err != nil {
		r.log.ErrorContext(ctx, "account email not sent", "request_id", RequestID(ctx), "kind", kind, "err", err)
	}
	return nil
}

func (r *Resolver) requestEmailVerification(ctx context.Context) error {
	v := auth.ViewerFrom(ctx)
	u, err := r.db.Users().ByID(ctx, db.UserEmail|db.UserEmailVerifiedAt, v.UserID)
	if err != nil {
		return err
	}
	if u.EmailVerifiedAt != nil {
		return nil
	}
	return r.issueAndSend(ctx, u.ID, u.Email, db.PurposeVerifyEmail, "verify_email", "/verify-email", verifyTokenTTL, "email.verification_requested")
}

func (r *Resolver) verifyEmail(ctx context.Context, token string) error {
	return r.write(ctx, func(tx *db.Tx) (change, error) {
		id, err := tx.Tokens().Consume(ctx, auth.HashToken(token), db.PurposeVerifyEmail, r.now())
		if err != nil {
			return change{}, err
		}
		return change{"email.verified", model.KindUser, id, nil}, tx.Users().MarkEmailVerified(ctx, id, r.now())
	})
}

// requestPasswordReset answers the same whether or not the address has an
// account.
func (r *Resolver) requestPasswordReset(ctx context.Context, email string) error {
	if err := model.ValidateEmail("input.email", email); err != nil {
		return err
	}
	if !r.throttle.AllowIP(ctx, "reset", auth.RequestFrom(ctx).IP) {
		return errTooManyAttempts
	}
	u, err := r.db.Users().ByEmail(ctx, db.UserEmail|db.UserStatus, email)
	if model.ErrorCode(err) == model.CodeNotFound || (err == nil && u.Status != model.UserStatusActive) {
		return nil
	}
	if err != nil {
		return err
	}
	return r.issueAndSend(ctx, u.ID, u.Email, db.PurposeResetPassword, "reset_password", "/reset-password", resetTokenTTL, "password.reset_requested")
}

// resetPassword sets a new password from an emailed token and ends every
// session of the user.
func (r *Resolver) resetPassword(ctx context.Context, token, next string) error {
	if err := auth.ValidatePassword("input.newPassword", next); err != nil {
		return err
	}
	hash, err := r.hasher.Hash(next)
	if err != nil {
		return hashErr(err)
	}
	return r.write(ctx, func(tx *db.Tx) (change, error) {
		id, err := tx.Tokens().Consume(ctx, auth.HashToken(token), db.PurposeResetPassword, r.now())
		if err != nil {
			return change{}, err
		}
		if err := tx.Users().SetPassword(ctx, id, hash, r.now()); err != nil {
			return change{}, err
		}
		return change{"password.reset", model.KindUser, id, nil}, r.sessions.RevokeAll(ctx, tx, id)
	})
}
