package model

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// Kind names the type of a Node; it is the prefix inside a global ID.
type Kind string

// The node kinds.
const (
	KindUser    Kind = "User"
	KindRole    Kind = "Role"
	KindGroup   Kind = "Group"
	KindSession Kind = "Session"
	KindAudit   Kind = "AuditEvent"
)

// GlobalID encodes a Relay global ID: the base64url form of "Kind:uuid".
// Clients treat it as opaque; we keep it decodable without a lookup so
// node(id:) can route to the right loader.
//
// Every object of a response carries one, so it is built in stack buffers
// and allocates only the string it returns.
func GlobalID(kind Kind, id uuid.UUID) string {
	var raw [64]byte
	b := append(raw[:0], kind...)
	b = append(b, ':')
	b = AppendUUID(b, id)
	var out [96]byte
	return string(base64.RawURLEncoding.AppendEncode(out[:0], b))
}

// AppendUUID appends id in its canonical text form (what id.String
// returns) without allocating.
func AppendUUID(b []byte, id uuid.UUID) []byte {
	const digits = "0123456789abcdef"
	var buf [36]byte
	j := 0
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			buf[j] = '-'
			j++
		}
		buf[j], buf[j+1] = digits[c>>4], digits[c&0xf]
		j += 2
	}
	return append(b, buf[:]...)
}

// ParseGlobalID decodes a global ID. It returns a BAD_USER_INPUT error naming
// field for anything that is not a well-formed ID.
func ParseGlobalID(field, gid string) (Kind, uuid.UUID, error) {
	bad := Invalid(field, "%q is not a valid ID", truncate(gid, 64))
	if len(gid) > 100 {
		return "", uuid.Nil, bad
	}
	raw, err := strictBase64.DecodeString(gid)
	if err != nil {
		return "", uuid.Nil, bad
	}
	kind, rest, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", uuid.Nil, bad
	}
	switch Kind(kind) {
	case KindUser, KindRole, KindGroup, KindSession, KindAudit:
	default:
		return "", uuid.Nil, bad
	}
	id, err := uuid.Parse(rest)
	if err != nil || id.String() != rest { // one spelling: canonical lower case
		return "", uuid.Nil, bad
	}
	return Kind(kind), id, nil
}

// ParseGlobalIDOf decodes a global ID that must be of the given kind.
func ParseGlobalIDOf(field string, want Kind, gid string) (uuid.UUID, error) {
	kind, id, err := ParseGlobalID(field, gid)
	if err != nil {
		return uuid.Nil, err
	}
	if kind != want {
		return uuid.Nil, Invalid(field, "%q is not the ID of a %s", truncate(gid, 64), want)
	}
	return id, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// EmailVerified reports whether the user has proven they own their address.
func (u *User) EmailVerified() bool { return u.EmailVerifiedAt != nil }

// IsNode marks User as a Node for gqlgen.
func (User) IsNode() {}

// IsNode marks Role as a Node for gqlgen.
func (Role) IsNode() {}

// IsNode marks Group as a Node for gqlgen.
func (Group) IsNode() {}

// GetID returns the user's global ID (the Node interface's id).
func (u User) GetID() string { return GlobalID(KindUser, u.ID) }

// GetID returns the role's global ID (the Node interface's id).
func (r Role) GetID() string { return GlobalID(KindRole, r.ID) }

// GetID returns the group's global ID (the Node interface's id).
func (g Group) GetID() string { return GlobalID(KindGroup, g.ID) }

// JobGlobalID encodes the global ID of a background job: "Job:<id>".
func JobGlobalID(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(string(KindJob) + ":" + strconv.FormatInt(id, 10)))
}

// ParseJobID decodes a job's global ID; a BAD_USER_INPUT error naming
// field for anything else.
func ParseJobID(field, gid string) (int64, error) {
	bad := Invalid(field, "%q is not the ID of a Job", truncate(gid, 64))
	if len(gid) > 100 {
		return 0, bad
	}
	raw, err := strictBase64.DecodeString(gid)
	if err != nil {
		return 0, bad
	}
	kind, rest, ok := strings.Cut(string(raw), ":")
	if !ok || Kind(kind) != KindJob {
		return 0, bad
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != rest {
		return 0, bad
	}
	return id, nil
}

// IsJobID reports whether gid looks like a job's global ID, so node(id:)
// can route it.
func IsJobID(gid string) bool {
	_, err := ParseJobID("id", gid)
	return err == nil
}

// CacheTags name what a cached response that holds the entity read, so a
// change to it removes that response (see package cache).
func (u User) CacheTags() []string { return []string{"User:" + u.ID.String()} }

// CacheTags implements cache.Tagged.
func (r Role) CacheTags() []string { return []string{"Role:" + r.ID.String()} }

// CacheTags implements cache.Tagged.
func (g Group) CacheTags() []string { return []string{"Group:" + g.ID.String()} }

// strictBase64 decodes an ID with exactly one spelling (a cache key or an
// audit record can rely on it): stray trailing bits are refused, and so are
// the line breaks Go's decoder would otherwise skip.
var strictBase64 = oneSpelling{}

type oneSpelling struct{}

func (oneSpelling) DecodeString(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, base64.CorruptInputError(strings.IndexAny(s, "\r\n"))
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}
