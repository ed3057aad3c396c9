// Package auth owns who a request is and what it may do: password hashing
// and policy, sessions (PostgreSQL as the source of truth, a cache in
// front), the viewer carried in the context, and the permission names.
package auth

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
)

// Permission names carried by roles.
const (
	PermUsersRead    = "users:read"
	PermUsersWrite   = "users:write"
	PermRolesManage  = "roles:manage"
	PermGroupsManage = "groups:manage"
	PermAuditRead    = "audit:read"
	PermJobsManage   = "jobs:manage"
)

// Viewer is the authenticated user behind a request.
type Viewer struct {
	UserID    uuid.UUID
	SessionID uuid.UUID
	// Permissions may be shared with other requests of the same session
	// (see RedisCache): read it, never change it.
	Permissions []string
}

// Can reports whether the viewer holds permission p.
func (v *Viewer) Can(p string) bool { return v != nil && slices.Contains(v.Permissions, p) }

type viewerKey struct{}

// WithViewer returns ctx carrying v.
func WithViewer(ctx context.Context, v *Viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, v)
}

// ViewerFrom returns the request's viewer, or nil for an anonymous request.
func ViewerFrom(ctx context.Context) *Viewer {
	v, _ := ctx.Value(viewerKey{}).(*Viewer)
	return v
}

// MaxUserAgent is how much of a User-Agent header is kept (sessions and the
// audit log store it; the database refuses more).
const MaxUserAgent = 512

// ClipUserAgent cuts a User-Agent header to MaxUserAgent bytes without
// splitting a character (PostgreSQL refuses invalid UTF-8). The HTTP edge
// applies it once, so nothing behind it needs to.
func ClipUserAgent(ua string) string {
	return strings.ToValidUTF8(ua[:min(len(ua), MaxUserAgent)], "")
}

// Request is what the auth resolvers need of the HTTP request: the client's
// address and user agent, and a way to set the session cookie.
type Request struct {
	IP        string
	UserAgent string
	SetCookie func(*http.Cookie)

	mu       sync.Mutex
	loggedIn *Viewer
}

// LoggedIn records that the request started a session for v, so the rest
// of the operation (the login payload's user, say) sees v as the viewer.
func (r *Request) LoggedIn(v *Viewer) {
	r.mu.Lock()
	r.loggedIn = v
	r.mu.Unlock()
}

// EffectiveViewer is the viewer for authorization: the session's, or the one
// a login in this request just started.
func EffectiveViewer(ctx context.Context) *Viewer {
	if v := ViewerFrom(ctx); v != nil {
		return v
	}
	if r, _ := ctx.Value(requestKey{}).(*Request); r != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.loggedIn
	}
	return nil
}

type requestKey struct{}

// WithRequest returns ctx carrying r.
func WithRequest(ctx context.Context, r *Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestFrom returns the request info, or an empty one outside HTTP.
func RequestFrom(ctx context.Context) *Request {
	if r, _ := ctx.Value(requestKey{}).(*Request); r != nil {
		return r
	}
	return &Request{SetCookie: func(*http.Cookie) {}}
}
