package db_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/db/dbtest"
	"github.com/usergraph/usergraph/model"
	"github.com/usergraph/usergraph/seed"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// planNode is the part of EXPLAIN (FORMAT JSON) we look at.
type planNode struct {
	NodeType  string     `json:"Node Type"`
	IndexName string     `json:"Index Name"`
	Plans     []planNode `json:"Plans"`
}

func (p planNode) shape() string {
	var b strings.Builder
	var walk func(n planNode, depth int)
	walk = func(n planNode, depth int) {
		b.WriteString(strings.Repeat("  ", depth) + n.NodeType)
		if n.IndexName != "" {
			b.WriteString(" using " + n.IndexName)
		}
		b.WriteString("\n")
		for _, c := range n.Plans {
			walk(c, depth+1)
		}
	}
	walk(p, 0)
	return b.String()
}

func explain(t *testing.T, d *db.DB, sql string) planNode {
	t.Helper()
	var raw string
	if err := d.Pool.QueryRow(context.Background(), "EXPLAIN (FORMAT JSON) "+sql).Scan(&raw); err != nil {
		t.Fatalf("EXPLAIN %s: %v", sql, err)
	}
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(raw), &plans); err != nil {
		t.Fatal(err)
	}
	return plans[0].Plan
}

// A page deep into 100,000 users must be read the way page one is: by
// seeking into the (sort key, id) index, never by OFFSET or a sort.
func TestKeyset_DeepPageUsesSameIndexPlanAsFirstPage(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	ctx := context.Background()
	if _, err := seed.Run(ctx, d.Pool, seed.Options{Users: 100_000, Groups: 50}); err != nil {
		t.Fatal(err)
	}
	users := d.Users()
	cols := db.UserEmail | db.UserUsername

	orders := []struct {
		order db.UserOrder
		index string
	}{
		{db.UserOrder{Field: model.UserOrderCreatedAt, Direction: model.Asc}, "users_created_at_id_idx"},
		{db.UserOrder{Field: model.UserOrderCreatedAt, Direction: model.Desc}, "users_created_at_id_idx"},
		{db.UserOrder{Field: model.UserOrderEmail, Direction: model.Asc}, "users_email_id_idx"},
		{db.UserOrder{Field: model.UserOrderUsername, Direction: model.Desc}, "users_username_id_idx"},
		{db.UserOrder{Field: model.UserOrderDisplayName, Direction: model.Asc}, "users_display_name_id_idx"},
	}
	for _, tc := range orders {
		t.Run(string(tc.order.Field)+"_"+string(tc.order.Direction), func(t *testing.T) {
			first := 50
			page1, err := db.ParsePage(db.PageArgs{First: &first}, tc.order.PageTag())
			if err != nil {
				t.Fatal(err)
			}
			// Walk to a cursor about 90% of the way through: take the row at
			// that position from the database itself.
			w, err := users.List(ctx, cols, model.UserFilter{}, tc.order, page1)
			if err != nil {
				t.Fatal(err)
			}
			if len(w.Rows) != 50 {
				t.Fatalf("page one has %d rows, want 50", len(w.Rows))
			}
			deep := deepCursor(t, d, tc.order, 90_000)
			deepPage, err := db.ParsePage(db.PageArgs{First: &first, After: &deep}, tc.order.PageTag())
			if err != nil {
				t.Fatal(err)
			}
			w2, err := users.List(ctx, cols, model.UserFilter{}, tc.order, deepPage)
			if err != nil {
				t.Fatal(err)
			}
			if len(w2.Rows) != 50 || !w2.PageInfo.HasNextPage {
				t.Fatalf("deep page has %d rows (hasNextPage %v), want 50 and more after it", len(w2.Rows), w2.PageInfo.HasNextPage)
			}

			sql1 := db.ListUsersSQL(d, cols, model.UserFilter{}, tc.order, page1)
			sql2 := db.ListUsersSQL(d, cols, model.UserFilter{}, tc.order, deepPage)
			for _, sql := range []string{sql1, sql2} {
				if strings.Contains(strings.ToUpper(sql), "OFFSET") {
					t.Fatalf("statement uses OFFSET: %s", sql)
				}
			}
			p1, p2 := explain(t, d, sql1), explain(t, d, sql2)
			if p1.shape() != p2.shape() {
				t.Fatalf("plans differ:\npage one:\n%s\ndeep page:\n%s", p1.shape(), p2.shape())
			}
			t.Logf("plan:\n%s", p1.shape())
			if !strings.Contains(p1.shape(), "using "+tc.index) || strings.Contains(p1.shape(), "Sort") {
				t.Fatalf("want an index scan on %s without a sort, got:\n%s", tc.index, p1.shape())
			}
		})
	}
}

// deepCursor returns the cursor of the row at position n in order o. The
// position is found with OFFSET here, in the test, never in the API.
func deepCursor(t *testing.T, d *db.DB, o db.UserOrder, n int) string {
	t.Helper()
	col := map[model.UserOrderField]string{
		model.UserOrderCreatedAt: "created_at", model.UserOrderEmail: "email",
		model.UserOrderUsername: "username", model.UserOrderDisplayName: "display_name",
	}[o.Field]
	var id uuid.UUID
	err := d.Pool.QueryRow(context.Background(),
		"SELECT id FROM users WHERE deleted_at IS NULL ORDER BY "+col+" "+string(o.Direction)+", id "+string(o.Direction)+" OFFSET $1 LIMIT 1", n).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	u, err := d.Users().ByID(context.Background(), db.AllColumns, id)
	if err != nil {
		t.Fatal(err)
	}
	return db.CursorOf(o, u)
}
