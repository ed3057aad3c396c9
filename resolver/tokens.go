package resolver

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/jobs"
	"github.com/usergraph/usergraph/model"
)

// sendAccountEmail enqueues a verification or reset email in the
// transaction that records the request. The job makes the token when it
// runs: no token ever sits in the job table or the logs.
func (r *Resolver) sendAccountEmail(ctx context.Context, u *model.User, purpose, action string) error {
	if r.jobs == nil {
		return errors.New("resolver: no job queue configured for account emails")
	}
	return r.write(ctx, func(tx *db.Tx) (change, error) {
		return change{action, model.KindUser, u.ID, nil}, r.jobs.AccountEmailTx(ctx, tx, u.ID, purpose)
	})
}

func (r *Resolver) requestEmailVerification(ctx context.Context) error {
	v := auth.ViewerFrom(ctx)
	u, err := r.db.Users().ByID(ctx, db.UserEmailVerifiedAt, v.UserID)
	if err != nil {
		return err
	}
	if u.EmailVerifiedAt != nil {
		return nil
	}
	return r.sendAccountEmail(ctx, u, db.PurposeVerifyEmail, "email.verification_requested")
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
// account. However many requests come in, a recipient gets at most one
// email a minute (a unique job).
func (r *Resolver) requestPasswordReset(ctx context.Context, email string) error {
	if err := model.ValidateEmail("input.email", email); err != nil {
		return err
	}
	if !r.throttle.AllowIP(ctx, "reset", auth.RequestFrom(ctx).IP) {
		return errTooManyAttempts
	}
	u, err := r.db.Users().ByEmail(ctx, db.UserStatus, email)
	if model.ErrorCode(err) == model.CodeNotFound || (err == nil && u.Status != model.UserStatusActive) {
		return nil
	}
	if err != nil {
		return err
	}
	return r.sendAccountEmail(ctx, u, db.PurposeResetPassword, "password.reset_requested")
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
		if err := r.notice(ctx, tx, id, jobs.NoticePasswordChanged, uuid.Nil); err != nil {
			return change{}, err
		}
		return change{"password.reset", model.KindUser, id, nil}, r.sessions.RevokeAll(ctx, tx, id)
	})
}
