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
