package server

import (
	"bytes"
	"sync"
	"unsafe"

	"github.com/99designs/gqlgen/graphql"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/klauspost/compress/gzip"
)

// keptAnswers keeps the bodies of the answers the response cache hands out
// most, as they are sent ({"data":…}) and, for the clients that accept it,
// gzipped. The persisted-query fast path (cachedPersisted) then builds and
// compresses an answer once rather than on every request: the same answer
// goes to every client that asks for it until it changes. Building a
// 50-user page's body anew copied 12 KiB per request, the largest
// allocation of a plain direct answer.
//
// It is keyed by the answer's content, never by a cache key: what it
// returns is made from exactly the bytes it was given (checked byte for
// byte on each hit), so it cannot be stale or serve one viewer's answer to
// another. Answers outside [compressMinSize, keptMaxAnswer] are built per
// request (and compressed by gzhttp). That bounds its memory to about
// 4 × keptEntries × keptMaxAnswer, 32 MiB: each of its two indexes holds
// up to keptEntries answers, each with its data and its body (its gzip is
// smaller). The data is usually the response cache's own kept copy, and a
// 50-user page is 12 KiB, so it holds far less in practice.
type keptAnswers struct {
	byContent *contentMemo[*keptAnswer]
	// byData finds an answer by where its data lives, without hashing it:
	// the response cache hands out the same bytes it keeps (see
	// cache.localAnswers) to every request for them. An entry holds the
	// data it was found by, so that address cannot be reused for other
	// bytes meanwhile.
	byData  *lru.Cache[*byte, keptAt]
	writers sync.Pool // *gzip.Writer
}

// keptAnswer is one answer's body, and its body gzipped once a client
// asks for that.
type keptAnswer struct {
	body []byte
	zip  sync.Once
	gz   []byte
}

// keptAt is the answer made of data, found by data's address.
type keptAt struct {
	data   []byte
	answer *keptAnswer
}

const (
	keptEntries   = 128
	keptMaxAnswer = 64 << 10
)

func newKeptAnswers() *keptAnswers {
	byData, _ := lru.New[*byte, keptAt](keptEntries) // errs only for a size < 1
	return &keptAnswers{byContent: newContentMemo[*keptAnswer](keptEntries), byData: byData}
}

// body is the body of the answer whose data is data, as writeResponse
// would send it.
func (k *keptAnswers) body(data []byte) []byte {
	if e, ok := k.answer(data); ok {
		return e.body
	}
	return responseBody(&graphql.Response{Data: data})
}

// gzipped returns the gzip encoding of the answer's body; false when data
// is not an answer it keeps.
func (k *keptAnswers) gzipped(data []byte) ([]byte, bool) {
	e, ok := k.answer(data)
	if !ok {
		return nil, false
	}
	e.zip.Do(func() {
		var buf bytes.Buffer
		zw, _ := k.writers.Get().(*gzip.Writer)
		if zw == nil {
			zw, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed) // errs only for an invalid level
		} else {
			zw.Reset(&buf)
		}
		_, _ = zw.Write(e.body) // a bytes.Buffer does not fail
		_ = zw.Close()
		k.writers.Put(zw)
		e.gz = buf.Bytes()
	})
	return e.gz, true
}

// answer is data's entry, made if it has none; false when data is too
// small to be worth keeping or too large to keep.
func (k *keptAnswers) answer(data []byte) (*keptAnswer, bool) {
	if len(data) > keptMaxAnswer || len(data) < compressMinSize {
		return nil, false
	}
	if at, ok := k.byData.Get(unsafe.SliceData(data)); ok && len(at.data) == len(data) {
		return at.answer, true // the very bytes it was found by, which never change
	}
	e, ok := k.byContent.get(data)
	if !ok {
		e = &keptAnswer{body: responseBody(&graphql.Response{Data: data})}
		k.byContent.add(data, e)
	}
	k.byData.Add(unsafe.SliceData(data), keptAt{data: data, answer: e})
	return e, true
}
