package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// digest names a value by its content: 128 bits of SHA-256, in hex.
func digest(val []byte) string {
	sum := sha256.Sum256(val)
	return hex.EncodeToString(sum[:16])
}

// localAnswers keeps the answers an instance hands out most, each under
// the Redis key of its digest and with that digest. The persisted-query
// fast path reads only the digest from Redis (32 bytes, along the session
// check) and answers from here when it matches: the bytes are then the
// ones in Redis at that moment, so a copy is never stale and never another
// viewer's (the key names the viewer). A cached answer of 12.6 KB read
// from Redis on every request was half the bytes the fast path allocated.
//
// Memory is bounded by localBudget; an answer over localMaxAnswer is not
// kept, and is read from Redis each time.
type localAnswers struct {
	mu      sync.Mutex
	entries *simplelru.LRU[string, localAnswer]
	size    int // bytes held
}

type localAnswer struct {
	digest string
	data   []byte
}

const (
	localBudget    = 16 << 20
	localMaxAnswer = 1 << 20
)

func newLocalAnswers() *localAnswers {
	l := &localAnswers{}
	// The budget bounds it long before the count does.
	l.entries, _ = simplelru.NewLRU(1<<20, func(_ string, a localAnswer) { l.size -= len(a.data) }) // errs only for a size < 1
	return l
}

// get returns the answer kept under key if its digest is digest.
func (l *localAnswers) get(key string, digest []byte) ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.entries.Get(key)
	if !ok || a.digest != string(digest) {
		return nil, false
	}
	return a.data, true
}

// keep keeps data under key and returns the bytes kept for it: those
// already kept when they are the same (so a repeated read hands out one
// slice, and costs a comparison instead of a digest), else data. data must
// not change afterwards.
func (l *localAnswers) keep(key string, data []byte) []byte {
	if len(data) > localMaxAnswer {
		return data
	}
	l.mu.Lock()
	old, ok := l.entries.Get(key)
	l.mu.Unlock()
	if ok && bytes.Equal(old.data, data) {
		return old.data
	}
	sum := digest(data) // outside the lock: it reads every byte
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.entries.Peek(key); ok {
		l.size -= len(old.data) // Add replaces without evicting
	}
	l.entries.Add(key, localAnswer{digest: sum, data: data})
	l.size += len(data)
	for l.size > localBudget {
		l.entries.RemoveOldest()
	}
	return data
}
