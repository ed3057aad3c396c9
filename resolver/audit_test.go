package resolver_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/usergraph/usergraph/db"
)

type auditPage struct {
	AuditEvents struct {
		Nodes []struct {
			Action   string
			TargetID *string
			Actor    *struct{ Username string }
			IP       *string
			Metadata string
		}
		PageInfo struct {
			HasNextPage bool
			EndCursor   *string
		}
	}
}

func (b *bundle) audit(t *testing.T, filter map[string]any, first int, after *string) auditPage {
	t.Helper()
	var out auditPage
	b.mustDo(t, `query($f: AuditEventFilter, $n: Int, $a: String) { auditEvents(filter: $f, first: $n, after: $a) {
		nodes { action targetId actor { username } ip metadata } pageInfo { hasNextPage endCursor } } }`,
		map[string]any{"f": filter, "n": first, "a": after}, &out)
	return out
}

// Authentication events and admin changes are recorded with who, what,
// where; nothing secret.
func TestAudit_RecordsAuthenticationAndChanges(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.doAs(t, "", `mutation { register(input: {email: "ada@example.com", username: "ada", password: "correct horse battery"}) { accepted } }`, nil)
	b.login(t, "ada", "wrong horse battery")
	r, _ := b.login(t, "ada", "correct horse battery")
	token := loginToken(t, r)
	b.doAs(t, token, `mutation { logout { ok } }`, nil)
	id := b.createUser(t, "bob@example.com", "bob")
	b.mustDo(t, `mutation($id: ID!) { deactivateUser(input: {id: $id}) { user { id } } }`, map[string]any{"id": id}, nil)

	out := b.audit(t, nil, 50, nil)
	var actions []string
	for _, n := range out.AuditEvents.Nodes {
		actions = append(actions, n.Action)
		if strings.Contains(n.Metadata, "horse") {
			t.Fatalf("a password reached the audit log: %+v", n)
		}
	}
	want := []string{"user.deactivate", "user.create", "logout", "login.success", "login.failure", "account.register"}
	if strings.Join(actions, ",") != strings.Join(want, ",") {
		t.Fatalf("audit log, newest first: %v, want %v", actions, want)
	}
	if n := out.AuditEvents.Nodes[3]; n.Actor == nil || n.Actor.Username != "ada" || n.IP == nil || *n.TargetID == "" {
		t.Fatalf("login.success lacks actor, address or target: %+v", n)
	}

	// Filter by action and by target; page through.
	if got := b.audit(t, map[string]any{"action": "login.failure"}, 10, nil); len(got.AuditEvents.Nodes) != 1 {
		t.Fatalf("filter by action: %+v", got)
	}
	if got := b.audit(t, map[string]any{"target": id}, 10, nil); len(got.AuditEvents.Nodes) != 2 {
		t.Fatalf("filter by target: %+v", got)
	}
	p1 := b.audit(t, nil, 4, nil)
	p2 := b.audit(t, nil, 4, p1.AuditEvents.PageInfo.EndCursor)
	if !p1.AuditEvents.PageInfo.HasNextPage || len(p2.AuditEvents.Nodes) != 2 || p2.AuditEvents.Nodes[1].Action != "account.register" {
		t.Fatalf("paging: %+v then %+v", p1, p2)
	}
}

// A change that fails leaves no audit event: they share one transaction.
func TestAudit_RolledBackChangeLeavesNoEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createUser(t, "ada@example.com", "ada")
	r := b.do(t, `mutation { createUser(input: {email: "ADA@example.com", username: "ada2"}) { user { id } } }`, nil)
	if r.errorCode(t) != "CONFLICT" {
		t.Fatalf("duplicate: %s", r.Raw)
	}
	if got := b.audit(t, map[string]any{"action": "user.create"}, 10, nil); len(got.AuditEvents.Nodes) != 1 {
		t.Fatalf("user.create events: %d, want 1 (the failed create must leave none)", len(got.AuditEvents.Nodes))
	}
}

// The audit table is append-only, whatever the role, and range-partitioned
// by month: a query for a time range reads only its months.
func TestAudit_AppendOnlyAndPartitionPruning(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.createUser(t, "ada@example.com", "ada")
	for _, stmt := range []string{"UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"} {
		if _, err := b.db.Pool.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: want refused as append-only, got %v", stmt, err)
		}
	}
	var parts int
	if err := b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_events'::regclass`).Scan(&parts); err != nil || parts < 4 {
		t.Fatalf("audit partitions: %d (%v), want this month, 3 ahead and the default", parts, err)
	}
	month := time.Now().UTC()
	from := time.Date(month.Year(), month.Month(), 1, 0, 0, 0, 0, time.UTC)
	sql := b.db.Gorm.ToSQL(func(tx *gorm.DB) *gorm.DB {
		return tx.Table("audit_events").Where("occurred_at >= ? AND occurred_at < ?", from, from.AddDate(0, 1, 0)).Find(&[]db.AuditEvent{})
	})
	var raw string
	if err := b.db.Pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var plan []map[string]any
	_ = json.Unmarshal([]byte(raw), &plan)
	scanned := strings.Count(raw, `"Relation Name": "audit_events_`)
	if scanned != 1 || !strings.Contains(raw, "audit_events_"+from.Format("2006_01")) {
		t.Fatalf("a one-month query must read only that month's partition, plan reads %d: %s", scanned, raw)
	}
}
