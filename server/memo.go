package server

import (
	"bytes"
	"hash/maphash"

	lru "github.com/hashicorp/golang-lru/v2"
)

// contentMemo remembers a value for each of the most recent byte strings
// it was given, keyed by a hash of the bytes and checked byte for byte on
// each hit, so it never answers for other bytes than its own.
type contentMemo[V any] struct {
	seed    maphash.Seed
	entries *lru.Cache[uint64, memoEntry[V]]
}

type memoEntry[V any] struct {
	content []byte
	val     V
}

func newContentMemo[V any](size int) *contentMemo[V] {
	entries, _ := lru.New[uint64, memoEntry[V]](size) // errs only for a size < 1
	return &contentMemo[V]{seed: maphash.MakeSeed(), entries: entries}
}

// get returns the value remembered for content.
func (m *contentMemo[V]) get(content []byte) (V, bool) {
	if e, ok := m.entries.Get(maphash.Bytes(m.seed, content)); ok && bytes.Equal(e.content, content) {
		return e.val, true
	}
	var zero V
	return zero, false
}

// add remembers val for content, which must not change afterwards.
func (m *contentMemo[V]) add(content []byte, val V) {
	m.entries.Add(maphash.Bytes(m.seed, content), memoEntry[V]{content: content, val: val})
}
