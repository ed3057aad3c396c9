package resolver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/model"
)

// countTTL bounds how long an expensive count is reused; changes to users
// remove it at once, so the bound matters only for memory.
const countTTL = 10 * time.Second

// listTag names the root lists of a kind: creating, deleting or changing
// an entity of that kind invalidates every cached list of it.
func listTag(k model.Kind) string {
	switch k {
	case model.KindUser:
		return "users"
	case model.KindRole:
		return "roles"
	case model.KindGroup:
		return "groups"
	}
	return ""
}

// RootCacheTags names the lists a root field reads, for the response cache:
// a lookup that found nothing must also go when the entity appears.
func RootCacheTags(field string) []string {
	switch field {
	case "user", "users":
		return []string{"users"}
	case "role", "roles":
		return []string{"roles"}
	case "group", "groups":
		return []string{"groups"}
	case "node", "nodes":
		return []string{"users", "roles", "groups"}
	}
	return nil
}

// invisible changes alter nothing a cached response can hold.
func invisible(action string) bool {
	switch {
	case strings.HasPrefix(action, "logout"), strings.HasPrefix(action, "session."),
		strings.HasPrefix(action, "password."), strings.HasPrefix(action, "job."),
		action == "users.export", action == "user.data_export", action == "users.import":
		return true
	}
	return false
}

// changeTags are the cache tags a committed change makes stale: the entity,
// its kind's lists, the other side of a relation, and for a user who
// disappears or returns, the groups and roles whose counts include them.
// It runs inside the change's transaction, so the relations it reads are
// the ones the change saw.
func changeTags(ctx context.Context, tx *db.Tx, c change) ([]string, error) {
	if c.target == uuid.Nil || invisible(c.action) {
		return nil, nil
	}
	tags := []string{string(c.kind) + ":" + c.target.String()}
	if l := listTag(c.kind); l != "" {
		tags = append(tags, l)
	}
	for key, kind := range map[string]model.Kind{"role": model.KindRole, "user": model.KindUser} {
		if gid, ok := c.meta[key].(string); ok {
			if id, err := model.ParseGlobalIDOf(key, kind, gid); err == nil {
				tags = append(tags, string(kind)+":"+id.String())
			}
		}
	}
	switch c.action {
	case "user.delete", "user.restore", "user.delete_self", "user.delete_cancel", "account.register":
		groups, roles, err := tx.Users().RelationIDs(ctx, c.target)
		if err != nil {
			return nil, err
		}
		for _, id := range groups {
			tags = append(tags, "Group:"+id.String())
		}
		for _, id := range roles {
			tags = append(tags, "Role:"+id.String())
		}
	}
	return tags, nil
}

// invalidate removes cached responses and entities that read what changed,
// before the mutation answers, on every instance. A failure is logged by
// the store, which keeps retrying and bypasses the cache meanwhile.
func (r *Resolver) invalidate(ctx context.Context, tags ...string) {
	if r.cache == nil || len(tags) == 0 {
		return
	}
	_ = r.cache.Invalidate(ctx, tags...)
}

// cachedCount reuses a list's count for a few seconds, until a change to
// what it counts. Counting a filtered list of a million users is the most
// expensive statement a page can ask for.
func (r *Resolver) cachedCount(ctx context.Context, list string, filter any, count func(ctx context.Context) (int64, error)) (int64, error) {
	if r.cache == nil {
		return count(ctx)
	}
	raw, _ := json.Marshal(filter)
	sum := sha256.Sum256(raw)
	key := "count:" + list + ":" + hex.EncodeToString(sum[:16])
	vals, seq, err := r.cache.GetMany(ctx, []string{key}) // the value and the sequence in one round trip
	if err == nil && vals[0] != nil {
		if n, err := strconv.ParseInt(string(vals[0]), 10, 64); err == nil {
			return n, nil
		}
	}
	n, cerr := count(ctx)
	if cerr == nil && err == nil {
		_ = r.cache.Set(ctx, key, []byte(strconv.FormatInt(n, 10)), countTTL, []string{list}, seq)
	}
	return n, cerr
}
