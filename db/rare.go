package db

import (
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/usergraph/usergraph/model"
)

// rareSearches remembers the searches whose walk (see searchWalk) came
// back short, so that the same search from the same place next time skips
// the walk it would lose again and is one statement, through the trigram
// index. It holds a plan, never an answer: a stale entry costs time (a
// term that became common is collected and sorted rather than walked, as
// it was on its first page), never a wrong row. Entries expire, so a term
// that became common is walked again within rareTTL.
//
// The key is everything that decides where the walk goes and what it
// keeps: the term, the other filters, the order, the page size and the
// cursors. A later
// page of a rare search is walked once too, since a term rare at the start
// of the order can be common further on.
type rareSearches struct {
	lru *expirable.LRU[string, struct{}]
}

const (
	rareSearchesSize = 10_000
	rareTTL          = 10 * time.Minute
)

func newRareSearches() *rareSearches {
	return &rareSearches{lru: expirable.NewLRU[string, struct{}](rareSearchesSize, nil, rareTTL)}
}

// known reports whether the search was rare when last walked. A nil memo
// (a store inside a transaction) knows nothing.
func (r *rareSearches) known(key string) bool {
	if r == nil {
		return false
	}
	_, ok := r.lru.Get(key)
	return ok
}

// remember notes that the search's walk came back short.
func (r *rareSearches) remember(key string) {
	if r != nil {
		r.lru.Add(key, struct{}{})
	}
}

// searchKey names a search for rareSearches.
func searchKey(f model.UserFilter, o UserOrder, p Page) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(f.Search))
	b.WriteByte(0)
	b.WriteString(string(o.Field))
	b.WriteString(string(o.Direction))
	b.WriteString(strconv.Itoa(p.Limit))
	for _, s := range f.Statuses {
		b.WriteString("\x00s")
		b.WriteString(string(s))
	}
	if f.RoleID != nil {
		b.WriteString("\x00r" + f.RoleID.String())
	}
	if f.GroupID != nil {
		b.WriteString("\x00g" + f.GroupID.String())
	}
	if f.CreatedAfter != nil {
		b.WriteString("\x00a" + f.CreatedAfter.UTC().Format(time.RFC3339Nano))
	}
	if f.CreatedBefore != nil {
		b.WriteString("\x00b" + f.CreatedBefore.UTC().Format(time.RFC3339Nano))
	}
	if f.EmailVerified != nil {
		b.WriteString("\x00v" + strconv.FormatBool(*f.EmailVerified))
	}
	for _, c := range []struct {
		tag byte
		c   *Cursor
	}{{'>', p.After}, {'<', p.Before}} {
		if c.c != nil {
			b.WriteByte(0)
			b.WriteByte(c.tag)
			b.WriteString(c.c.Value)
			b.WriteString(c.c.ID.String())
		}
	}
	if p.Backward {
		b.WriteString("\x00backward")
	}
	return b.String()
}
