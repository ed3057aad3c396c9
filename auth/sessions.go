package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/db"
)

// SessionConfig configures sessions.
type SessionConfig struct {
	// IdleTimeout ends a session not used for this long. Defaults to 30 minutes.
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after login, used or not.
	// Defaults to 12 hours.
	AbsoluteTimeout time.Duration
	// MaxPerUser bounds a user's live sessions; the oldest is revoked when a
	// login would exceed it. Defaults to 10.
	MaxPerUser int
	// CacheTTL is how long a validated session is trusted from the cache.
	// Revocation deletes the entry, so this only bounds staleness when the
	// cache could not be reached at revocation time. Defaults to 30 seconds.
	CacheTTL time.Duration
	// TouchInterval limits last-seen writes to one per session per interval.
	// Defaults to 1 minute.
	TouchInterval time.Duration
}

// WithDefaults returns a copy of c with unset fields filled in.
func (c SessionConfig) WithDefaults() SessionConfig {
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Minute
	}
	if c.AbsoluteTimeout == 0 {
		c.AbsoluteTimeout = 12 * time.Hour
	}
	if c.MaxPerUser == 0 {
		c.MaxPerUser = 10
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = 30 * time.Second
	}
	if c.TouchInterval == 0 {
		c.TouchInterval = time.Minute
	}
	return c
}

// Validate reports the first invalid setting, naming it.
func (c SessionConfig) Validate() error {
	switch {
	case c.IdleTimeout < time.Minute:
		return fmt.Errorf("SESSION_IDLE_TIMEOUT: must be at least 1m, got %s", c.IdleTimeout)
	case c.AbsoluteTimeout < c.IdleTimeout:
		return fmt.Errorf("SESSION_ABSOLUTE_TIMEOUT: must be at least SESSION_IDLE_TIMEOUT (%s), got %s", c.IdleTimeout, c.AbsoluteTimeout)
	case c.MaxPerUser < 1:
		return fmt.Errorf("SESSION_MAX_PER_USER: must be at least 1, got %d", c.MaxPerUser)
	}
	return nil
}

// CookieName is the session cookie. The __Host- prefix makes browsers
// refuse it unless it is Secure, host-only and for path "/".
const CookieName = "__Host-usergraph_session"

// Sessions creates, validates and revokes login sessions. PostgreSQL is the
// source of truth; the cache only saves lookups, and revocation removes the
// cached entry before it returns, so every instance sharing the cache stops
// accepting the session at once.
type Sessions struct {
	db    *db.DB
	cache SessionCache
	cfg   SessionConfig
	now   func() time.Time
	log   *slog.Logger
}

// NewSessions returns the session service.
func NewSessions(d *db.DB, cache SessionCache, cfg SessionConfig, now func() time.Time, log *slog.Logger) *Sessions {
	if now == nil {
		now = time.Now
	}
	return &Sessions{db: d, cache: cache, cfg: cfg.WithDefaults(), now: now, log: log}
}

// Config returns the effective configuration.
func (s *Sessions) Config() SessionConfig { return s.cfg }

// NewToken returns a fresh opaque token (32 random bytes, base64url) and the
// SHA-256 that is stored in its place.
func NewToken() (token string, hash []byte, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("error reading random bytes: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken is the stored form of a token.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func cacheKey(hash []byte) string { return "sess:" + hex.EncodeToString(hash) }

// Create starts a session for userID inside tx, revoking the user's oldest
// sessions beyond the limit, and returns its token. The caller commits.
func (s *Sessions) Create(ctx context.Context, tx *db.Tx, userID uuid.UUID, userAgent, ip string) (string, *db.Session, error) {
	token, hash, err := NewToken()
	if err != nil {
		return "", nil, err
	}
	now := s.now().Truncate(time.Microsecond)
	sess := &db.Session{ID: uuid.Must(uuid.NewV7()), UserID: userID, TokenHash: hash, UserAgent: userAgent,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.cfg.AbsoluteTimeout)}
	if ip != "" {
		sess.IP = &ip
	}
	evicted, err := tx.Sessions().Create(ctx, sess, s.cfg.MaxPerUser)
	if err != nil {
		return "", nil, err
	}
	s.forget(ctx, tx, evicted)
	return token, sess, nil
}

// Authenticate returns the viewer of a live session token, or nil when the
// token is unknown, revoked, expired or idle, or its user may no longer log
// in. An error means the lookup itself failed.
func (s *Sessions) Authenticate(ctx context.Context, token string) (*Viewer, error) {
	if len(token) != 43 { // base64url of 32 bytes; anything else cannot be ours
		return nil, nil
	}
	hash := HashToken(token)
	key := cacheKey(hash)
	now := s.now()
	c, ok, gen := s.cache.Get(ctx, key)
	if ok && c.Generation == gen && now.Before(c.ExpiresAt) && now.Sub(c.LastSeenAt) < s.cfg.IdleTimeout {
		if now.Sub(c.LastSeenAt) < s.cfg.TouchInterval {
			v := c.Viewer
			return &v, nil
		}
	}
	row, err := s.db.Sessions().Lookup(ctx, hash, now, now.Add(-s.cfg.IdleTimeout))
	if err != nil || row == nil {
		return nil, err
	}
	lastSeen := row.LastSeenAt
	if now.Sub(lastSeen) >= s.cfg.TouchInterval {
		if err := s.db.Sessions().Touch(ctx, row.ID, now); err != nil {
			return nil, err
		}
		lastSeen = now
	}
	v := Viewer{UserID: row.UserID, SessionID: row.ID, Permissions: row.Permissions}
	if gen >= 0 { // a negative generation means the cache could not be read: do not fill it
		s.cache.Set(ctx, key, CachedSession{Viewer: v, ExpiresAt: row.ExpiresAt, LastSeenAt: lastSeen, Generation: gen}, s.cfg.CacheTTL)
	}
	return &v, nil
}

// Revoke ends one session, inside tx when it is not nil. With owner set,
// only that user's session can be revoked (NOT_FOUND otherwise, so session
// ids cannot be probed).
func (s *Sessions) Revoke(ctx context.Context, tx *db.Tx, sessionID uuid.UUID, owner *uuid.UUID) error {
	store := s.db.Sessions()
	if tx != nil {
		store = tx.Sessions()
	}
	hash, err := store.Revoke(ctx, sessionID, owner, s.now())
	if err != nil {
		return err
	}
	s.forget(ctx, tx, [][]byte{hash})
	return nil
}

// RevokeAll ends every session of a user (logout everywhere, password
// change or reset, deactivation). tx may be nil.
func (s *Sessions) RevokeAll(ctx context.Context, tx *db.Tx, userID uuid.UUID) error {
	store := s.db.Sessions()
	if tx != nil {
		store = tx.Sessions()
	}
	hashes, err := store.RevokeAll(ctx, userID, s.now())
	if err != nil {
		return err
	}
	s.forget(ctx, tx, hashes)
	return nil
}

// PermissionsChanged invalidates every cached session, so that a changed
// role or grant applies to the next request of every viewer.
func (s *Sessions) PermissionsChanged(ctx context.Context) { s.cache.BumpGeneration(ctx) }

// forget drops revoked sessions from the cache at once and, inside a
// transaction, again after it commits: between the two a concurrent request
// could have cached the session from the still-visible old row.
func (s *Sessions) forget(ctx context.Context, tx *db.Tx, hashes [][]byte) {
	if len(hashes) == 0 {
		return
	}
	keys := make([]string, len(hashes))
	for i, h := range hashes {
		keys[i] = cacheKey(h)
	}
	s.cache.Delete(ctx, keys...)
	if tx != nil {
		tx.AfterCommit(func() { s.cache.Delete(context.WithoutCancel(ctx), keys...) })
	}
}

// Cookie returns the session cookie for token.
func (s *Sessions) Cookie(token string, expires time.Time) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: token, Path: "/", Expires: expires, Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode}
}

// ExpiredCookie clears the session cookie.
func (s *Sessions) ExpiredCookie() *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}
