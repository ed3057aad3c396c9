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

// A search never lets PostgreSQL guess by the term's length how many users
// it matches. A common term finds its page by walking the creation order,
// in one statement; a rare one (digits, a whole username) reads nothing
// past the bounded walk but its matches, through the trigram index. Either
// way every page, followed by its cursor, is the plain query's.
func TestSearch_CommonTermsWalkRareTermsUseTheTrigramIndex(t *testing.T) {
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
	for _, tc := range []struct {
		term       string
		statements int64 // for the first page
	}{
		{"4242", 2},
		{someone, 2},
		{"example", 1},
		{"hopper", 1}, // a last name: a few users in 100, enough for the walk
	} {
		f := model.UserFilter{Search: tc.term}
		page, err := db.ParsePage(db.PageArgs{First: &first}, order.PageTag())
		if err != nil {
			t.Fatal(err)
		}
		_, collect := db.SearchSQL(d, db.UserUsername, f, order, page)
		var plan []string
		rows, err := d.Pool.Query(ctx, "EXPLAIN "+collect)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		if !strings.Contains(strings.Join(plan, "\n"), "users_search_trgm_idx") && tc.term != "example" {
			t.Errorf("%q: the collecting statement does not read the trigram index:\n%s", tc.term, strings.Join(plan, "\n"))
		}

		want := plainSearch(t, d, tc.term)
		var got []string
		for n := 0; ; n++ {
			cctx, counter := db.WithStatementCounter(ctx)
			w, err := d.Users().List(cctx, db.UserUsername, f, order, page)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 && counter.Count() != tc.statements {
				t.Errorf("%q: first page in %d statements, want %d", tc.term, counter.Count(), tc.statements)
			}
			for _, u := range w.Rows {
				got = append(got, u.Username)
			}
			if !w.PageInfo.HasNextPage || n > 1000 {
				break
			}
			after := *w.PageInfo.EndCursor
			if page, err = db.ParsePage(db.PageArgs{First: &first, After: &after}, order.PageTag()); err != nil {
				t.Fatal(err)
			}
		}
		if len(want) == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%q: pages gave %d users, the plain query %d (or an order differs)", tc.term, len(got), len(want))
		}
	}
}

// plainSearch is every match of term in creation order, as PostgreSQL
// finds them unaided.
func plainSearch(t *testing.T, d *db.DB, term string) []string {
	t.Helper()
	return dbtest.Strings(t, d.Pool, `SELECT username FROM users u WHERE u.deleted_at IS NULL
		AND (u.email || ' ' || lower(u.username) || ' ' || lower(u.display_name)) LIKE '%' || $1 || '%'
		ORDER BY u.created_at, u.id`, term)
}

// A search found rare is not walked again from the same place: the same
// request is one statement, through the trigram index, and gives the same
// page. A common search is still walked, and a rare search's next page is
// walked once, since a term rare at the start can be common further on.
func TestSearch_ARareSearchAgainSkipsTheWalk(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	ctx := context.Background()
	if _, err := seed.Run(ctx, d.Pool, seed.Options{Users: 20_000, Groups: 20}); err != nil {
		t.Fatal(err)
	}
	order := db.UserOrder{Field: model.UserOrderCreatedAt, Direction: model.Asc}
	first := 50
	list := func(term string, after *string) (users []string, statements int64, next *string) {
		t.Helper()
		page, err := db.ParsePage(db.PageArgs{First: &first, After: after}, order.PageTag())
		if err != nil {
			t.Fatal(err)
		}
		cctx, counter := db.WithStatementCounter(ctx)
		w, err := d.Users().List(cctx, db.UserUsername, model.UserFilter{Search: term}, order, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range w.Rows {
			users = append(users, u.Username)
		}
		return users, counter.Count(), w.PageInfo.EndCursor
	}

	rare := "4242"
	page1, n1, next := list(rare, nil)
	again, n2, _ := list(rare, nil)
	if n1 != 2 || n2 != 1 {
		t.Errorf("rare search: %d statements, then %d again; want 2, then 1", n1, n2)
	}
	if len(page1) == 0 || fmt.Sprint(again) != fmt.Sprint(page1) {
		t.Errorf("rare search again gave %v, first time %v", again, page1)
	}
	if want := plainSearch(t, d, rare); fmt.Sprint(again) != fmt.Sprint(want[:min(first, len(want))]) {
		t.Errorf("rare search again gave %d users, the plain query's first page is another", len(again))
	}
	if next != nil {
		if _, n, _ := list(rare, next); n != 2 {
			t.Errorf("rare search's next page: %d statements, want 2 (walked once)", n)
		}
	}
	for range 2 {
		if _, n, _ := list("example", nil); n != 1 {
			t.Errorf("common search: %d statements, want 1 (walked)", n)
		}
	}
	if _, n, _ := list("4242", nil); n != 1 {
		t.Errorf("rare search a third time: %d statements, want 1", n)
	}
}
