package db

import (
	"context"

	"gorm.io/gorm"

	"github.com/usergraph/usergraph/model"
)

// ListUsersSQL renders the statement UserStore.List sends, values inlined,
// so tests can EXPLAIN it.
func ListUsersSQL(d *DB, cols Columns, f model.UserFilter, o UserOrder, p Page) string {
	return d.Gorm.ToSQL(func(tx *gorm.DB) *gorm.DB {
		q, err := (&UserStore{db: tx}).listQuery(context.Background(), cols, f, o, p)
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

// SearchSQL renders the two statements of a search (see searchWalk),
// values inlined, so tests can EXPLAIN them.
func SearchSQL(d *DB, cols Columns, f model.UserFilter, o UserOrder, p Page) (walk, collect string) {
	render := func(pick func(walk, collect *gorm.DB) *gorm.DB) string {
		return d.Gorm.ToSQL(func(tx *gorm.DB) *gorm.DB {
			w, c, err := (&UserStore{db: tx}).searchQueries(context.Background(), cols, f, o, p)
			if err != nil {
				panic(err)
			}
			return pick(w, c).Scan(&[]model.User{})
		})
	}
	return render(func(w, _ *gorm.DB) *gorm.DB { return w }), render(func(_, c *gorm.DB) *gorm.DB { return c })
}
