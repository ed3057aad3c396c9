package resolver

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/graph"
	"github.com/usergraph/usergraph/jobs"
	"github.com/usergraph/usergraph/model"
)

var (
	// errInvalidCredentials is the one answer to every failed login: unknown
	// account, wrong password, or an account that may not log in.
	errInvalidCredentials = &model.Error{Code: model.CodeUnauthenticated, Message: "invalid credentials"}
	errBusy               = &model.Error{Code: model.CodeRateLimited, Message: "too many logins in progress, retry shortly"}
	errTooManyAttempts    = &model.Error{Code: model.CodeRateLimited, Message: "too many attempts from your address, retry later"}
	errEmailTaken         = errors.New("email already registered")
)

func hashErr(err error) error {
	if errors.Is(err, auth.ErrBusy) {
		return errBusy
	}
	return err
}

// register creates an account. When the email address already has one it
// does the same work and answers the same, so registration cannot tell an
// outsider who has an account.
func (r *Resolver) register(ctx context.Context, in graph.RegisterInput) error {
	nu, err := newUserInput(graph.CreateUserInput{Email: in.Email, Username: in.Username, DisplayName: in.DisplayName})
	if err != nil {
		return err
	}
	if err := auth.ValidatePassword("input.password", in.Password); err != nil {
		return err
	}
	if !r.throttle.AllowIP(ctx, "register", auth.RequestFrom(ctx).IP) {
		return errTooManyAttempts
	}
	hash, err := r.hasher.Hash(in.Password)
	if err != nil {
		return hashErr(err)
	}
	now := r.now()
	var tags []string
	err = r.db.InTx(ctx, func(tx *db.Tx) error {
		u, err := tx.Users().Create(ctx, nu, now)
		var me *model.Error
		if errors.As(err, &me) && me.Code == model.CodeConflict && me.Field == "input.email" {
			return errEmailTaken
		}
		if err != nil {
			return err
		}
		if err := tx.Users().SetPassword(ctx, u.ID, hash, now); err != nil {
			return err
		}
		if err := tx.Roles().AssignByName(ctx, u.ID, "member", now); err != nil {
			return err
		}
		if err := r.welcome(ctx, tx, u.ID); err != nil {
			return err
		}
		c := change{"account.register", model.KindUser, u.ID, nil}
		if tags, err = changeTags(ctx, tx, c); err != nil {
			return err
		}
		return tx.Audit().Record(ctx, r.auditEvent(ctx, c))
	})
	if errors.Is(err, errEmailTaken) {
		return nil
	}
	if err == nil {
		r.invalidate(ctx, tags...)
	}
	return err
}

// login checks credentials and starts a session. Every failure, whatever
// its cause (unknown account, wrong password, locked or inactive account),
// does the same password work and gives the same answer.
func (r *Resolver) login(ctx context.Context, identifier, password string) (string, *db.Session, error) {
	if len(identifier) > 254 || len(password) > 1024 {
		return "", nil, errInvalidCredentials
	}
	if !r.throttle.AllowIP(ctx, "login", auth.RequestFrom(ctx).IP) {
		return "", nil, errTooManyAttempts
	}
	creds, err := r.db.Users().CredentialsFor(ctx, identifier)
	if err != nil {
		return "", nil, err
	}
	account := "name:" + strings.ToLower(identifier)
	if creds != nil {
		account = "user:" + creds.ID.String()
	}
	locked := r.throttle.Locked(ctx, account)
	if creds == nil || creds.PasswordHash == nil {
		if _, err := r.hasher.VerifyDummy(password); err != nil {
			return "", nil, hashErr(err)
		}
		if !locked {
			r.throttle.Failed(ctx, account)
		}
		r.loginFailed(ctx, nil, locked)
		return "", nil, errInvalidCredentials
	}
	ok, rehash, err := r.hasher.Verify(password, *creds.PasswordHash)
	if err != nil {
		return "", nil, hashErr(err)
	}
	if locked {
		r.loginFailed(ctx, &creds.ID, true)
		return "", nil, errInvalidCredentials // attempts during a lockout do not extend it
	}
	if !ok || creds.Status != model.UserStatusActive {
		r.throttle.Failed(ctx, account)
		r.loginFailed(ctx, &creds.ID, false)
		return "", nil, errInvalidCredentials
	}
	r.throttle.Succeeded(ctx, account)
	var newHash string
	if rehash {
		if newHash, err = r.hasher.Hash(password); err != nil {
			newHash = "" // a busy hasher must not fail a correct login; rehash next time
		}
	}
	req := auth.RequestFrom(ctx)
	var token string
	var sess *db.Session
	now := r.now()
	tags := []string{"User:" + creds.ID.String()} // lastLoginAt
	err = r.db.InTx(ctx, func(tx *db.Tx) error {
		var err error
		if token, sess, err = r.sessions.Create(ctx, tx, creds.ID, req.UserAgent, req.IP); err != nil {
			return err
		}
		if newHash != "" {
			if err := tx.Users().SetPassword(ctx, creds.ID, newHash, now); err != nil {
				return err
			}
		}
		if err := tx.Users().RecordLogin(ctx, creds.ID, now); err != nil {
			return err
		}
		if creds.PendingDeletion {
			if err := tx.Users().CancelDeletion(ctx, creds.ID, now); err != nil {
				return err
			}
			c := change{"user.delete_cancel", model.KindUser, creds.ID, nil}
			if tags, err = changeTags(ctx, tx, c); err != nil {
				return err
			}
			e := r.auditEvent(ctx, c)
			e.ActorID = &creds.ID
			if err := tx.Audit().Record(ctx, e); err != nil {
				return err
			}
		}
		if err := r.signInNotice(ctx, tx, creds.ID, sess); err != nil {
			return err
		}
		e := r.auditEvent(ctx, change{"login.success", model.KindUser, creds.ID, map[string]any{"session": model.GlobalID(model.KindSession, sess.ID)}})
		e.ActorID = &creds.ID
		return tx.Audit().Record(ctx, e)
	})
	if err != nil {
		return "", nil, err
	}
	r.invalidate(ctx, tags...)
	req.SetCookie(r.sessions.Cookie(token, sess.ExpiresAt))
	if v, err := r.sessions.Authenticate(ctx, token); err == nil && v != nil {
		req.LoggedIn(v)
	}
	return token, sess, nil
}

// verifyPassword checks the viewer's current password (for changes that
// need a fresh proof of identity).
func (r *Resolver) verifyPassword(ctx context.Context, field, password string) error {
	v := auth.ViewerFrom(ctx)
	stored, err := r.db.Users().PasswordHash(ctx, v.UserID)
	if err != nil {
		return err
	}
	if stored == nil {
		return model.Invalid(field, "the current password is wrong")
	}
	ok, _, err := r.hasher.Verify(password, *stored)
	if err != nil {
		return hashErr(err)
	}
	if !ok {
		return model.Invalid(field, "the current password is wrong")
	}
	return nil
}

// changePassword checks the current password, stores the new one, ends
// every session of the user and starts a new one for the caller.
func (r *Resolver) changePassword(ctx context.Context, current, next string) (string, *db.Session, error) {
	v := auth.ViewerFrom(ctx)
	if err := r.verifyPassword(ctx, "input.currentPassword", current); err != nil {
		return "", nil, err
	}
	if err := auth.ValidatePassword("input.newPassword", next); err != nil {
		return "", nil, err
	}
	hash, err := r.hasher.Hash(next)
	if err != nil {
		return "", nil, hashErr(err)
	}
	req := auth.RequestFrom(ctx)
	var token string
	var sess *db.Session
	err = r.db.InTx(ctx, func(tx *db.Tx) error {
		if err := tx.Users().SetPassword(ctx, v.UserID, hash, r.now()); err != nil {
			return err
		}
		if err := r.sessions.RevokeAll(ctx, tx, v.UserID); err != nil {
			return err
		}
		var err error
		if token, sess, err = r.sessions.Create(ctx, tx, v.UserID, req.UserAgent, req.IP); err != nil {
			return err
		}
		if err := r.notice(ctx, tx, v.UserID, jobs.NoticePasswordChanged, uuid.Nil); err != nil {
			return err
		}
		return tx.Audit().Record(ctx, r.auditEvent(ctx, change{"password.change", model.KindUser, v.UserID, nil}))
	})
	if err != nil {
		return "", nil, err
	}
	req.SetCookie(r.sessions.Cookie(token, sess.ExpiresAt))
	return token, sess, nil
}

func sessionConnection(ctx context.Context, w db.Window[db.Session]) *graph.SessionConnection {
	v := auth.ViewerFrom(ctx)
	c := &graph.SessionConnection{PageInfo: &w.PageInfo}
	for i := range w.Rows {
		s := &w.Rows[i]
		n := graph.Session{ID: model.GlobalID(model.KindSession, s.ID), UserAgent: s.UserAgent, IP: s.IP,
			CreatedAt: s.CreatedAt, LastSeenAt: s.LastSeenAt, ExpiresAt: s.ExpiresAt, Current: v != nil && v.SessionID == s.ID}
		c.Edges = append(c.Edges, graph.SessionEdge{Cursor: w.Cursors[i], Node: &n})
		c.Nodes = append(c.Nodes, n)
	}
	if c.Edges == nil {
		c.Edges, c.Nodes = []graph.SessionEdge{}, []graph.Session{}
	}
	return c
}

// loginFailed records a failed or refused login. The identifier typed is
// not recorded: it may be a password typed into the wrong box.
func (r *Resolver) loginFailed(ctx context.Context, userID *uuid.UUID, locked bool) {
	action := "login.failure"
	if locked {
		action = "login.locked"
	}
	c := change{action: action}
	if userID != nil {
		c.kind, c.target = model.KindUser, *userID
	}
	if err := r.recordOutsideTx(ctx, c); err != nil {
		r.auditLogFailure(ctx, err)
	}
}

// notice enqueues a security notice in the transaction of the change it
// reports.
func (r *Resolver) notice(ctx context.Context, tx *db.Tx, userID uuid.UUID, notice string, sessionID uuid.UUID) error {
	if r.jobs == nil {
		return nil
	}
	return r.jobs.NoticeTx(ctx, tx, userID, notice, sessionID, r.now())
}

// signInNotice tells the user about a sign-in from a device (user agent)
// their account has not used before, when SignInNotices is on.
func (r *Resolver) signInNotice(ctx context.Context, tx *db.Tx, userID uuid.UUID, sess *db.Session) error {
	if !r.cfg.SignInNotices || r.jobs == nil {
		return nil
	}
	known, err := tx.Sessions().KnownDevice(ctx, userID, sess.UserAgent, sess.ID)
	if err != nil || known {
		return err
	}
	return r.notice(ctx, tx, userID, jobs.NoticeNewSignIn, sess.ID)
}

// welcome enqueues the welcome email in the transaction that creates the
// user.
func (r *Resolver) welcome(ctx context.Context, tx *db.Tx, userID uuid.UUID) error {
	if r.jobs == nil {
		return nil
	}
	return r.jobs.WelcomeTx(ctx, tx, userID)
}
