package auth_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/redistest"
)

// An entry read again is the entry as it is in Redis now: a touch, a new
// generation or another instance's write is never hidden by the decoding
// remembered from the read before.
func TestRedisCache_ReadsTheEntryAsItIsNow(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	one := auth.NewRedisCache(rs.Client(t), rs.Reads(t, 5*time.Second), 5*time.Second, log)
	other := auth.NewRedisCache(rs.Client(t), nil, 5*time.Second, log)
	seen := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	entry := auth.CachedSession{Viewer: auth.Viewer{UserID: uuid.New(), SessionID: uuid.New(), Permissions: []string{"users:read"}},
		ExpiresAt: seen.Add(time.Hour), LastSeenAt: seen}
	one.Set(ctx, "session:a", entry, time.Minute)
	for range 2 { // decoded, then remembered
		if got, ok, _ := one.Get(ctx, "session:a"); !ok || !got.LastSeenAt.Equal(seen) || got.Viewer.Permissions[0] != "users:read" {
			t.Fatalf("read %v, %v; want the entry written", got, ok)
		}
	}

	touched := entry
	touched.LastSeenAt = seen.Add(time.Minute)
	touched.Viewer.Permissions = []string{"users:read", "users:write"}
	other.Set(ctx, "session:a", touched, time.Minute)
	if got, ok, _ := one.Get(ctx, "session:a"); !ok || !got.LastSeenAt.Equal(touched.LastSeenAt) || len(got.Viewer.Permissions) != 2 {
		t.Fatalf("after another instance's write: %v, %v", got, ok)
	}
	other.Delete(ctx, "session:a")
	if _, ok, _ := one.Get(ctx, "session:a"); ok {
		t.Fatal("a deleted entry was read")
	}
}
