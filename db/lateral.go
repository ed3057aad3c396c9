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
// parent as p.id. pos returns a row's parent, sort value and id.
func lateralPages[T any](ctx context.Context, db *gorm.DB, parents []uuid.UUID, p Page, key sortKey, dir model.OrderDirection,
	selectList, from, where string, pos func(*T) (uuid.UUID, any, uuid.UUID), op string,
) (map[uuid.UUID]Window[T], error) {
	conds, seekArgs, orderBy, limit, err := p.seek(key, dir)
	if err != nil {
		return nil, err
	}
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
	args = append(args, uuidArray(parents))
	args = append(args, seekArgs...)
	args = append(args, limit)
	var rows []T
	if err := db.WithContext(ctx).Raw(b.String(), args...).Scan(&rows).Error; err != nil {
		return nil, translate(op, err)
	}

	byParent := make(map[uuid.UUID][]T, len(parents))
	for i := range rows {
		parent, _, _ := pos(&rows[i])
		byParent[parent] = append(byParent[parent], rows[i])
	}
	out := make(map[uuid.UUID]Window[T], len(parents))
	rowPos := func(r *T) (any, uuid.UUID) { _, v, id := pos(r); return v, id }
	for _, parent := range parents {
		out[parent] = window(byParent[parent], p, key, rowPos)
	}
	return out, nil
}
