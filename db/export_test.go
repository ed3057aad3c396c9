package db

import (
	"context"
	"strings"

	"gorm.io/gorm"

	"github.com/usergraph/usergraph/model"
)

// ListUsersSQL renders the statement UserStore.List sends, values inlined,
// so tests can EXPLAIN it.
func ListUsersSQL(d *DB, cols Columns, f model.UserFilter, o UserOrder, p Page) string {
	return d.Gorm.ToSQL(func(tx *gorm.DB) *gorm.DB {
		q, err := (&UserStore{db: tx}).listQuery(context.Background(), cols, f, o, p, false)
		if err != nil {
			panic(err)
		}
		return q.Find(&[]model.User{})
	})
}

// CursorOf mints the cursor of u in order o, as a page containing u would.
func CursorOf(o UserOrder, u *model.User) string {
	v, id := o.value(u)
	return encodeCursor(o.key().Tag, v, id)
}

// SearchPlan plans a search as List does and returns whether it counted the
// search sparse, with PostgreSQL's plan for its page under that choice.
func SearchPlan(d *DB, cols Columns, f model.UserFilter, o UserOrder, p Page) (sparse bool, plan string, err error) {
	ctx := context.Background()
	page := ListUsersSQL(d, cols, f, o, p)
	err = readTx(ctx, d.Gorm, func(tx *gorm.DB) error {
		var err error
		if sparse, err = (&UserStore{db: tx}).planSearch(ctx, f); err != nil {
			return err
		}
		rows, err := tx.Raw("EXPLAIN " + page).Rows()
		if err != nil {
			return err
		}
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				return err
			}
			lines = append(lines, line)
		}
		plan = strings.Join(lines, "\n")
		return rows.Err()
	})
	return sparse, plan, err
}
