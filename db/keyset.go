package db

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/usergraph/usergraph/model"
)

// Keyset (seek) pagination: a page continues strictly after (or before) the
// (sort key, id) pair of the cursor, so page 10,000 reads the same handful of
// index entries as page one and rows inserted or deleted elsewhere never
// shift a page. OFFSET is never used.

// Page size limits of every connection.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// PageArgs are a connection's arguments as the client sent them.
type PageArgs struct {
	First, Last   *int
	After, Before *string
}

// Page is a validated request for one page.
type Page struct {
	Limit    int
	Backward bool // paging with last/before: read in reverse, then flip
	After    *Cursor
	Before   *Cursor
	// NoCursors leaves the window's cursors (and its page info's) empty:
	// each costs a SHA-256, and a client that selects none (a page of
	// nodes) needs none.
	NoCursors bool
}

// Cursor is a decoded position: the sort key's value (as text) and the id
// that breaks ties.
type Cursor struct {
	Value string
	ID    uuid.UUID
}

// sortKey describes one ordering of one list. Tag names the list and order
// (e.g. "users/EMAIL"); a cursor minted for one tag is refused by another, so
// a cursor from the roles list cannot steer a users query.
type sortKey struct {
	Tag    string
	Column string // SQL expression of the sort key
	IDCol  string // SQL expression of the tie-breaking id
	Time   bool   // the sort key is a timestamptz (cursor holds RFC 3339)
}

// ParsePage validates connection arguments against the list identified by
// tag. Every problem is a BAD_USER_INPUT naming the argument.
func ParsePage(args PageArgs, tag string) (Page, error) {
	var p Page
	if args.First != nil && args.Last != nil {
		return p, model.Invalid("first", "pass either first or last, not both")
	}
	n := DefaultPageSize
	switch {
	case args.First != nil:
		if *args.First < 0 || *args.First > MaxPageSize {
			return p, model.Invalid("first", "first must be between 0 and %d", MaxPageSize)
		}
		n = *args.First
	case args.Last != nil:
		if *args.Last < 0 || *args.Last > MaxPageSize {
			return p, model.Invalid("last", "last must be between 0 and %d", MaxPageSize)
		}
		n = *args.Last
		p.Backward = true
	case args.Before != nil && args.After == nil:
		// "before" alone pages backward, like GitHub's API.
		p.Backward = true
	}
	p.Limit = n
	var err error
	if args.After != nil {
		if p.After, err = decodeCursor("after", tag, *args.After); err != nil {
			return p, err
		}
	}
	if args.Before != nil {
		if p.Before, err = decodeCursor("before", tag, *args.Before); err != nil {
			return p, err
		}
	}
	return p, nil
}

const cursorSep = "\x1f"

// encodeCursor makes an opaque cursor of the row at sort key value v and id.
// A short SHA-256 checksum makes any edited or truncated cursor fail to
// decode instead of seeking somewhere odd.
//
// Every row of a page gets one, so it is built in stack buffers and
// allocates only the string it returns.
func encodeCursor(tag string, v any, id uuid.UUID) string {
	var buf [192]byte
	payload := append(buf[:0], tag...)
	payload = append(payload, cursorSep...)
	payload = appendCursorValue(payload, v)
	payload = append(payload, cursorSep...)
	payload = model.AppendUUID(payload, id)
	sum := sha256.Sum256(payload)
	payload = append(payload, sum[:6]...)
	var out [256]byte
	return string(base64.RawURLEncoding.AppendEncode(out[:0], payload))
}

func decodeCursor(arg, tag, s string) (*Cursor, error) {
	bad := model.Invalid(arg, "%s is not a valid cursor for this list", arg)
	if len(s) > 1024 || strings.ContainsAny(s, "\r\n") { // the decoder would skip line breaks
		return nil, bad
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s) // one spelling per cursor
	if err != nil || len(raw) < 7 {
		return nil, bad
	}
	payload, sum := raw[:len(raw)-6], raw[len(raw)-6:]
	want := sha256.Sum256(payload)
	if !bytes.Equal(sum, want[:6]) {
		return nil, bad
	}
	parts := strings.Split(string(payload), cursorSep)
	if len(parts) != 3 || parts[0] != tag {
		return nil, bad
	}
	id, err := uuid.Parse(parts[2])
	if err != nil {
		return nil, bad
	}
	return &Cursor{Value: parts[1], ID: id}, nil
}

// seeking is where a page starts in its order: the conditions past its
// cursors (each with two arguments, the sort value and the id), the ORDER BY
// and the LIMIT, which reads one row more than asked so the caller can tell
// whether another page exists.
type seeking struct {
	conds   []string
	args    []any
	orderBy string
	limit   int
}

// where adds the conditions past the page's cursors to q.
func (s seeking) where(q *gorm.DB) *gorm.DB {
	for i, c := range s.conds {
		q = q.Where(c, s.args[2*i], s.args[2*i+1])
	}
	return q
}

// seek returns how p's rows over key in direction dir are read.
func (p Page) seek(key sortKey, dir model.OrderDirection) (seeking, error) {
	var (
		conds []string
		args  []any
	)
	asc := dir != model.Desc
	bound := func(c *Cursor, after bool) error {
		v, err := key.value(c)
		if err != nil {
			return err
		}
		op := "<"
		if after == asc {
			op = ">"
		}
		conds = append(conds, fmt.Sprintf("(%s, %s) %s (?, ?)", key.Column, key.IDCol, op))
		args = append(args, v, c.ID.String())
		return nil
	}
	if p.After != nil {
		if err := bound(p.After, true); err != nil {
			return seeking{}, err
		}
	}
	if p.Before != nil {
		if err := bound(p.Before, false); err != nil {
			return seeking{}, err
		}
	}
	return seeking{conds: conds, args: args, orderBy: p.orderBy(key, dir), limit: p.Limit + 1}, nil
}

// orderBy is the ORDER BY that reads p's rows over key in direction dir.
func (p Page) orderBy(key sortKey, dir model.OrderDirection) string {
	sqlDir := " ASC"
	if (dir != model.Desc) == p.Backward {
		sqlDir = " DESC"
	}
	return key.Column + sqlDir + ", " + key.IDCol + sqlDir
}

func (k sortKey) value(c *Cursor) (any, error) {
	if !k.Time {
		return c.Value, nil
	}
	t, err := time.Parse(time.RFC3339Nano, c.Value)
	if err != nil {
		return nil, model.Invalid("after", "not a valid cursor for this list")
	}
	return t, nil
}

// appendCursorValue renders a sort key value for a cursor.
func appendCursorValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case time.Time:
		return v.UTC().AppendFormat(b, time.RFC3339Nano)
	case string:
		return append(b, v...)
	default:
		return fmt.Append(b, v)
	}
}

// Window is one page of rows, in the order the client asked for, with the
// cursor of each row (nil when the page was read with NoCursors) and the
// page info.
type Window[T any] struct {
	Rows     []T
	Cursors  []string
	PageInfo model.PageInfo
}

// Cursor returns the cursor of Rows[i], or "" when none was minted.
func (w *Window[T]) Cursor(i int) string {
	if w.Cursors == nil {
		return ""
	}
	return w.Cursors[i]
}

// window trims the look-ahead row, restores the requested order and mints
// cursors unless p.NoCursors. pos returns a row's sort key value and id.
func window[T any](rows []T, p Page, key sortKey, pos func(*T) (any, uuid.UUID)) Window[T] {
	more := len(rows) > p.Limit
	if more {
		rows = rows[:p.Limit]
	}
	if p.Backward {
		slices.Reverse(rows)
	}
	w := Window[T]{Rows: rows}
	if !p.NoCursors {
		w.Cursors = make([]string, len(rows))
		for i := range rows {
			v, id := pos(&rows[i])
			w.Cursors[i] = encodeCursor(key.Tag, v, id)
		}
	}
	if p.Backward {
		w.PageInfo.HasPreviousPage = more
		w.PageInfo.HasNextPage = p.Before != nil
	} else {
		w.PageInfo.HasNextPage = more
		w.PageInfo.HasPreviousPage = p.After != nil
	}
	if len(w.Cursors) > 0 {
		w.PageInfo.StartCursor = &w.Cursors[0]
		w.PageInfo.EndCursor = &w.Cursors[len(rows)-1]
	}
	return w
}

// pageLimit is gorm's LIMIT clause with the number written into the
// statement rather than sent as a parameter. Given LIMIT $n, PostgreSQL
// cannot cost a generic plan of a page (it has to guess how many rows are
// wanted), so it plans the prepared statement again on every execution: at
// 300,000 users that doubled the time a page of users took in PostgreSQL
// (about 100 against 50 µs of CPU). A limit is at most MaxPageSize+1, so
// this adds few statements to each connection's cache.
type pageLimit int

// Name implements clause.Interface.
func (pageLimit) Name() string { return "LIMIT" }

// Build implements clause.Expression.
func (l pageLimit) Build(b clause.Builder) {
	b.WriteString("LIMIT ")
	b.WriteString(strconv.Itoa(int(l)))
}

// MergeClause implements clause.Interface: the last limit wins.
func (l pageLimit) MergeClause(c *clause.Clause) {
	c.Name = "" // Build writes the keyword
	c.Expression = l
}

// UserCursorAt is the cursor of the user list (default order: creation
// time) just after the user created at createdAt with id: what a client
// paging that far would hold. Benchmarks use it to start deep in the list.
func UserCursorAt(createdAt time.Time, id uuid.UUID) string {
	return encodeCursor(UserOrder{}.key().Tag, createdAt, id)
}
