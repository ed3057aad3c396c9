package db

import (
	"context"
	"strings"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/usergraph/usergraph/model"
)

// lateralPages reads one page of a nested connection for many parents at
// once (the first 5 groups of each of 100 users) in a single statement: a
// LATERAL subquery runs the keyset query once per parent, each using the
// index on (parent, sort key, id). This is what keeps a nested connection
// one statement per level instead of one per parent.
//
// selectList, from and where describe the inner query; where links it to the
// parent as p.id. bind returns a row's scan destinations: the parent id, then
// selectList's columns. parent returns a row's parent; pos its sort value
// and id.
func lateralPages[T any](ctx context.Context, db *gorm.DB, parents []uuid.UUID, p Page, key sortKey, dir model.OrderDirection,
	selectList, from, where string, bind func(*T) []any, parent func(*T) uuid.UUID, pos func(*T) (any, uuid.UUID), op string,
) (map[uuid.UUID]Window[T], error) {
	sk, err := p.seek(key, dir)
	if err != nil {
		return nil, err
	}
	conds, seekArgs, orderBy, limit := sk.conds, sk.args, sk.orderBy, sk.limit
	var b strings.Builder
	b.WriteString("SELECT p.id AS parent_id, x.* FROM unnest(?::uuid[]) WITH ORDINALITY AS p(id, ord) CROSS JOIN LATERAL (SELECT ")
	b.WriteString(selectList)
	b.WriteString(", row_number() OVER (ORDER BY ")
	b.WriteString(orderBy)
	b.WriteString(") AS rn FROM ")
	b.WriteString(from)
	b.WriteString(" WHERE ")
	b.WriteString(where)
	for _, c := range conds {
		b.WriteString(" AND ")
		b.WriteString(c)
	}
	b.WriteString(" ORDER BY ")
	b.WriteString(orderBy)
	b.WriteString(" LIMIT ?) x ORDER BY p.ord, x.rn")

	args := make([]any, 0, len(seekArgs)+2)
	args = append(args, uuidList(parents))
	args = append(args, seekArgs...)
	args = append(args, limit)
	var rn int64 // read, not kept: the order is the rows' order
	// Most parents have a few rows; growing from one per parent would copy
	// the rows twice.
	rows, err := scanRows(db.WithContext(ctx).Raw(b.String(), args...), len(parents)*min(limit, 4),
		func(r *T) []any { return append(bind(r), &rn) })
	if err != nil {
		return nil, translate(op, err)
	}

	// Rows arrive parent by parent, each parent's in page order: a parent's
	// page is a subslice of rows.
	out := make(map[uuid.UUID]Window[T], len(parents))
	for start := 0; start < len(rows); {
		id := parent(&rows[start])
		end := start + 1
		for end < len(rows) && parent(&rows[end]) == id {
			end++
		}
		out[id] = window(rows[start:end:end], p, key, pos)
		start = end
	}
	for _, id := range parents {
		if _, ok := out[id]; !ok {
			out[id] = window[T](nil, p, key, pos)
		}
	}
	return out, nil
}
