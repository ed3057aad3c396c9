package resolver

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/model"
)

// entityTTL bounds how long a hot entity stays in the shared cache; every
// change to it removes it at once, so this bounds only memory.
const entityTTL = 5 * time.Minute

// readThrough puts the shared entity cache in front of a batch function:
// one round trip reads every key of the batch, the misses go to
// PostgreSQL in one statement as before, and what they return is stored
// under its tags with the sequence read before the statement (so a change
// committed meanwhile is never cached stale). Without a store, or when it
// fails, the batch goes to PostgreSQL alone.
func readThrough[K comparable, V any](store cache.Store, keyOf func(K) string, tagsOf func(K, V) []string, fn dataloader.BatchFunc[K, V]) dataloader.BatchFunc[K, V] {
	if store == nil {
		return fn
	}
	return func(ctx context.Context, keys []K) []*dataloader.Result[V] {
		if db.PinnedToPrimary(ctx) {
			// A client that just wrote reads the primary, never an entry
			// that a lagging replica's read may have filled.
			return fn(ctx, keys)
		}
		skeys := make([]string, len(keys))
		for i, k := range keys {
			skeys[i] = keyOf(k)
		}
		vals, seq, err := store.GetMany(ctx, skeys)
		if err != nil {
			return fn(ctx, keys)
		}
		out := make([]*dataloader.Result[V], len(keys))
		var miss []K
		var at []int
		for i, v := range vals {
			if v != nil {
				var x V
				if json.Unmarshal(v, &x) == nil {
					out[i] = &dataloader.Result[V]{Data: x}
					continue
				}
			}
			miss, at = append(miss, keys[i]), append(at, i)
		}
		if len(miss) == 0 {
			return out
		}
		var entries []cache.Entry
		for j, r := range fn(ctx, miss) {
			out[at[j]] = r
			if r.Error != nil {
				continue
			}
			if b, err := json.Marshal(r.Data); err == nil {
				entries = append(entries, cache.Entry{Key: skeys[at[j]], Val: b, TTL: entityTTL, Tags: tagsOf(miss[j], r.Data)})
			}
		}
		_ = store.SetMany(ctx, entries, seq)
		return out
	}
}

func userEntityKey(k colKey) string {
	return "ent:user:" + strconv.FormatUint(uint64(k.Cols), 36) + ":" + k.ID.String()
}

func userEntityTags(k colKey, _ *model.User) []string { return []string{"User:" + k.ID.String()} }

func rolesEntityKey(k colKey) string {
	return "ent:uroles:" + strconv.FormatUint(uint64(k.Cols), 36) + ":" + k.ID.String()
}

// A user's role list goes with the user (assignments) and with each role
// (renames, deletions).
func rolesEntityTags(k colKey, roles []model.Role) []string {
	tags := []string{"User:" + k.ID.String()}
	for _, r := range roles {
		tags = append(tags, "Role:"+r.ID.String())
	}
	return tags
}
