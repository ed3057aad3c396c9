package auth

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/usergraph/usergraph/cache"
)

// Coherent is what the session cache needs of cache.Coherence to keep
// copies of Redis entries in memory and stay exact across instances.
type Coherent interface {
	// Epoch is the epoch to stamp a copy with, taken before the read that
	// fills it, and whether copies may be kept at all right now.
	Epoch() (epoch uint64, ok bool)
	// Valid reports whether a copy read in epoch may still answer.
	Valid(epoch uint64) bool
	cache.Announcer
}

// copies holds the values of the session check's read (the session entry,
// the permissions generation and the keys read along) in memory, so that a
// repeated request needs no round trip to Redis. A copy answers only while
// coherent says its epoch is current and for cache.CopyLifetime after its
// read. A missing key is copied too: a miss only ever sends the caller to
// PostgreSQL, or to Redis, for the truth.
type copies struct {
	coherent Coherent
	keep     bool // false: writes announce their invalidations, reads keep nothing
	entries  *lru.Cache[string, copyOf]
	now      func() time.Time
}

type copyOf struct {
	val    any // string, or nil for a missing key
	epoch  uint64
	readAt time.Time
}

// copiesSize bounds the copies: about 20,000 sessions' entries and the
// answers read along with them.
const copiesSize = 40_000

func newCopies(coherent Coherent, keep bool) *copies {
	entries, _ := lru.New[string, copyOf](copiesSize) // errs only for a size < 1
	return &copies{coherent: coherent, keep: keep, entries: entries, now: time.Now}
}

// get returns the values of keys when every one has a usable copy.
func (c *copies) get(keys []string) ([]any, bool) {
	vals := make([]any, len(keys))
	now := c.now()
	for i, k := range keys {
		cp, ok := c.entries.Get(k)
		if !ok || now.Sub(cp.readAt) >= cache.CopyLifetime || !c.coherent.Valid(cp.epoch) {
			return nil, false
		}
		vals[i] = cp.val
	}
	return vals, true
}

// begin is called before a read that may fill copies: the epoch to stamp
// them with, and whether to keep them.
func (c *copies) begin() (copyOf, bool) {
	if !c.keep {
		return copyOf{}, false
	}
	epoch, ok := c.coherent.Epoch()
	return copyOf{epoch: epoch, readAt: c.now()}, ok
}

// put keeps what a read begun with stamp returned.
func (c *copies) put(stamp copyOf, keys []string, vals []any) {
	if !c.coherent.Valid(stamp.epoch) {
		return // invalidated during the read: what it returned may be old
	}
	for i, k := range keys {
		stamp.val = vals[i]
		c.entries.Add(k, stamp)
	}
}

// drop forgets this instance's copies of keys.
func (c *copies) drop(keys ...string) {
	for _, k := range keys {
		c.entries.Remove(k)
	}
}
