package db_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/db/dbtest"
	"github.com/usergraph/usergraph/model"
	"github.com/usergraph/usergraph/seed"
)

// A search is planned from how many users it matches, counted through the
// trigram index, not from PostgreSQL's guess by the term's length: a rare
// term (digits, a whole username) reads its page from the trigram index,
// and a term most users match walks the creation order. Either way the page
// is the one the plain query returns.
func TestSearch_PlannedFromTheMatchesItCounts(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	ctx := context.Background()
	if _, err := seed.Run(ctx, d.Pool, seed.Options{Users: 20_000, Groups: 20}); err != nil {
		t.Fatal(err)
	}
	var someone string
	if err := d.Pool.QueryRow(ctx, "SELECT username FROM users ORDER BY created_at DESC LIMIT 1").Scan(&someone); err != nil {
		t.Fatal(err)
	}
	order := db.UserOrder{Field: model.UserOrderCreatedAt, Direction: model.Asc}
	first := 50
	page, err := db.ParsePage(db.PageArgs{First: &first}, order.PageTag())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		term   string
		sparse bool
		index  string
	}{
		{"4242", true, "users_search_trgm_idx"},
		{someone, true, "users_search_trgm_idx"},
		{"example", false, "users_created_at_id_idx"},
	} {
		f := model.UserFilter{Search: tc.term}
		sparse, plan, err := db.SearchPlan(d, db.UserUsername, f, order, page)
		if err != nil {
			t.Fatal(err)
		}
		if sparse != tc.sparse || !strings.Contains(plan, tc.index) {
			t.Errorf("%q: sparse %v (want %v), plan:\n%s\nwant it to use %s", tc.term, sparse, tc.sparse, plan, tc.index)
		}
		w, err := d.Users().List(ctx, db.UserUsername, f, order, page)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := d.Pool.Query(ctx, `SELECT username FROM users u WHERE u.deleted_at IS NULL
			AND (u.email || ' ' || lower(u.username) || ' ' || lower(u.display_name)) LIKE '%' || $1 || '%'
			ORDER BY u.created_at, u.id LIMIT 50`, tc.term)
		if err != nil {
			t.Fatal(err)
		}
		var want, got []string
		for rows.Next() {
			var u string
			if err := rows.Scan(&u); err != nil {
				t.Fatal(err)
			}
			want = append(want, u)
		}
		rows.Close()
		for _, u := range w.Rows {
			got = append(got, u.Username)
		}
		if len(want) == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%q: page %v, want %v", tc.term, got, want)
		}
	}
}
