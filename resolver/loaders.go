package resolver

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/graph-gophers/dataloader/v7"

	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/model"
)

// Loaders batch the lookups of one operation: every user's roles, every
// user's first five groups, every group's members... each become one SQL
// statement per level of the query instead of one per parent. They are made
// per operation (never shared: their cache would leak between viewers), and
// replaced after each mutation so later fields never read a stale cache.
type Loaders struct {
	db      *db.DB
	wait    time.Duration
	store   cache.Store
	observe func(loader string, keys int)
	mu      sync.Mutex
	set     *loaderSet
	// selections outlives Reset: it depends on the document, not the data.
	selections selections
}

func (l *Loaders) get() *loaderSet {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.set == nil {
		l.set = newLoaderSet(l.db, l.wait, l.store, l.observe)
	}
	return l.set
}

// Reset drops every cached result; mutations call it after writing.
func (l *Loaders) Reset() {
	l.mu.Lock()
	l.set = nil
	l.mu.Unlock()
}

// NewLoaders returns loaders over d for one operation. wait is how long a
// loader collects keys before it sends its batch; it is paid once per level
// of a query. store, when not nil, is the shared entity cache read through
// for users by id and the roles of users.
func NewLoaders(d *db.DB, wait time.Duration, store cache.Store, observe func(loader string, keys int)) *Loaders {
	return &Loaders{db: d, wait: wait, store: store, observe: observe}
}

type loaderSet struct {
	userByID     *batched[colKey, *model.User]
	roleByID     *batched[colKey, *model.Role]
	groupByID    *batched[colKey, *model.Group]
	rolesOfUser  *batched[colKey, []model.Role]
	groupsOfUser *batched[pageKey, db.Window[db.UserGroup]]
	groupCount   *batched[uuid.UUID, int64]
	membersOf    *batched[pageKey, db.Window[db.GroupMember]]
	holdersOf    *batched[pageKey, db.Window[db.RoleHolder]]
}

// batched is a dataloader together with its batch function and cache, so a
// prefetch that knows a level's complete set of keys can run the batch at
// once and prime the loader, instead of collecting keys for a batch window.
type batched[K comparable, V any] struct {
	*dataloader.Loader[K, V]
	fn     dataloader.BatchFunc[K, V]
	cache  *dataloader.InMemoryCache[K, V]
	report func(keys int)
}

// fetch runs one batch for the keys the loader has not seen yet and primes
// the loader with each result. A failed key is not primed: its field
// resolver loads it again and reports the error where it belongs.
func (b *batched[K, V]) fetch(ctx context.Context, keys []K) {
	todo := make([]K, 0, len(keys))
	seen := make(map[K]bool, len(keys))
	for _, k := range keys {
		if _, cached := b.cache.Get(ctx, k); !cached && !seen[k] {
			seen[k] = true
			todo = append(todo, k)
		}
	}
	if len(todo) == 0 {
		return
	}
	for i, r := range b.fn(ctx, todo) {
		if r.Error == nil {
			b.Prime(ctx, todo[i], r.Data)
		}
	}
}

// load returns the value for k: from the cache when a prefetch (or an
// earlier load) has put it there, else through the loader's batch. Looking
// first saves what Loader.Load allocates before it looks (a channel and a
// result per call, for every field of every parent of a prefetched level).
func (b *batched[K, V]) load(ctx context.Context, k K) (V, error) {
	if th, ok := b.cache.Get(ctx, k); ok {
		return th()
	}
	return b.Load(ctx, k)()
}

// colKey asks for one row by id, reading cols. Keys with different column
// sets are batched into one statement per set.
type colKey struct {
	ID   uuid.UUID
	Cols db.Columns
}

// pageKey asks for one page of a nested connection of parent ID. Pages with
// the same arguments are batched into one statement (see db.lateralPages).
type pageKey struct {
	ID        uuid.UUID
	Cols      db.Columns
	Args      pageArgs
	Order     db.NamedOrder
	NoCursors bool // see db.Page
}

// nestedPage is the key of the page of parent id that the current
// connection field selects, over nodes.
func nestedPage(ctx context.Context, nodes objectType, id uuid.UUID, args pageArgs, order db.NamedOrder) pageKey {
	sel := selectedOn(ctx, nodes, onNodes)
	return pageKey{ID: id, Cols: sel.cols, Args: args, Order: order, NoCursors: !sel.cursors}
}

// pageArgs is the comparable form of db.PageArgs.
type pageArgs struct {
	First, Last         int
	HasFirst, HasLast   bool
	After, Before       string
	HasAfter, HasBefore bool
}

func newPageArgs(first *int, after *string, last *int, before *string) pageArgs {
	var a pageArgs
	if first != nil {
		a.First, a.HasFirst = *first, true
	}
	if last != nil {
		a.Last, a.HasLast = *last, true
	}
	if after != nil {
		a.After, a.HasAfter = *after, true
	}
	if before != nil {
		a.Before, a.HasBefore = *before, true
	}
	return a
}

func (a pageArgs) dbArgs() db.PageArgs {
	var p db.PageArgs
	if a.HasFirst {
		p.First = &a.First
	}
	if a.HasLast {
		p.Last = &a.Last
	}
	if a.HasAfter {
		p.After = &a.After
	}
	if a.HasBefore {
		p.Before = &a.Before
	}
	return p
}

func newLoaderSet(d *db.DB, wait time.Duration, store cache.Store, observe func(string, int)) *loaderSet {
	users, roles, groups := d.Users(), d.Roles(), d.Groups()
	s := &loaderSet{
		userByID: newLoader(wait, readThrough(store, userEntityKey, userEntityTags,
			byColumns(users.ByIDs, func(u *model.User) uuid.UUID { return u.ID }, "user"))),
		roleByID:  newLoader(wait, byColumns(roles.ByIDs, func(r *model.Role) uuid.UUID { return r.ID }, "role")),
		groupByID: newLoader(wait, byColumns(groups.ByIDs, func(g *model.Group) uuid.UUID { return g.ID }, "group")),
		rolesOfUser: newLoader(wait, readThrough(store, rolesEntityKey, rolesEntityTags, func(ctx context.Context, keys []colKey) []*dataloader.Result[[]model.Role] {
			return batchGroups(keys, func(k colKey) db.Columns { return k.Cols }, func(k colKey) uuid.UUID { return k.ID },
				func(cols db.Columns, ids []uuid.UUID) (map[uuid.UUID][]model.Role, error) {
					rows, err := roles.OfUsers(ctx, cols, ids)
					if err != nil {
						return nil, err
					}
					// Rows come user by user: each user's roles are a
					// subslice of one allocation.
					all := make([]model.Role, len(rows))
					out := make(map[uuid.UUID][]model.Role, len(ids))
					for start := 0; start < len(rows); {
						end := start
						for ; end < len(rows) && rows[end].UserID == rows[start].UserID; end++ {
							all[end] = rows[end].Role
						}
						out[rows[start].UserID] = all[start:end:end]
						start = end
					}
					for _, id := range ids { // a user with no roles has an empty list, not a missing one
						if out[id] == nil {
							out[id] = []model.Role{}
						}
					}
					return out, nil
				})
		})),
		groupsOfUser: newLoader(wait, pagesOf(func(ctx context.Context, k pageKey, ids []uuid.UUID, p db.Page) (map[uuid.UUID]db.Window[db.UserGroup], error) {
			return groups.OfUsers(ctx, k.Cols, ids, k.Order, p)
		}, func(k pageKey) string { return k.Order.PageTag(db.UserGroupsList) })),
		membersOf: newLoader(wait, pagesOf(func(ctx context.Context, k pageKey, ids []uuid.UUID, p db.Page) (map[uuid.UUID]db.Window[db.GroupMember], error) {
			return groups.Members(ctx, k.Cols, ids, p)
		}, func(pageKey) string { return db.GroupMembersList })),
		holdersOf: newLoader(wait, pagesOf(func(ctx context.Context, k pageKey, ids []uuid.UUID, p db.Page) (map[uuid.UUID]db.Window[db.RoleHolder], error) {
			return roles.Holders(ctx, k.Cols, ids, p)
		}, func(pageKey) string { return db.RoleUsersList })),
		groupCount: newLoader(wait, func(ctx context.Context, ids []uuid.UUID) []*dataloader.Result[int64] {
			counts, err := groups.CountOfUsers(ctx, ids)
			out := make([]*dataloader.Result[int64], len(ids))
			for i, id := range ids {
				out[i] = &dataloader.Result[int64]{Data: counts[id], Error: err}
			}
			return out
		}),
	}
	if observe != nil {
		s.userByID.observe(observe, "userByID")
		s.roleByID.observe(observe, "roleByID")
		s.groupByID.observe(observe, "groupByID")
		s.rolesOfUser.observe(observe, "rolesOfUser")
		s.groupsOfUser.observe(observe, "groupsOfUser")
		s.groupCount.observe(observe, "groupCount")
		s.membersOf.observe(observe, "membersOf")
		s.holdersOf.observe(observe, "holdersOf")
	}
	return s
}

// observe reports each batch's size. Prefetches (fetch) and the loader's
// own batches both go through fn.
func (b *batched[K, V]) observe(report func(string, int), name string) {
	b.report = func(n int) { report(name, n) }
}

func newLoader[K comparable, V any](wait time.Duration, fn dataloader.BatchFunc[K, V]) *batched[K, V] {
	cache := dataloader.NewCache[K, V]()
	b := &batched[K, V]{cache: cache}
	// Every batch, from the loader or a prefetch, reports its size.
	b.fn = func(ctx context.Context, keys []K) []*dataloader.Result[V] {
		if b.report != nil {
			b.report(len(keys))
		}
		return fn(ctx, keys)
	}
	b.Loader = dataloader.NewBatchedLoader(b.fn, dataloader.WithWait[K, V](wait), dataloader.WithBatchCapacity[K, V](1000),
		dataloader.WithCache[K, V](cache))
	return b
}

// byColumns adapts a store's ByIDs to a batch function: one statement per
// distinct column set, results in key order, NOT_FOUND for missing keys.
func byColumns[T any](byIDs func(context.Context, db.Columns, []uuid.UUID) ([]T, error), id func(*T) uuid.UUID, what string) dataloader.BatchFunc[colKey, *T] {
	return func(ctx context.Context, keys []colKey) []*dataloader.Result[*T] {
		res := batchGroups(keys, func(k colKey) db.Columns { return k.Cols }, func(k colKey) uuid.UUID { return k.ID },
			func(cols db.Columns, ids []uuid.UUID) (map[uuid.UUID]*T, error) {
				rows, err := byIDs(ctx, cols, ids)
				if err != nil {
					return nil, err
				}
				out := make(map[uuid.UUID]*T, len(rows))
				for i := range rows {
					out[id(&rows[i])] = &rows[i]
				}
				return out, nil
			})
		for _, r := range res {
			if r.Error == nil && r.Data == nil {
				r.Error = model.NotFound(what)
			}
		}
		return res
	}
}

// pagesOf adapts a store's batched nested-connection read to a batch function.
func pagesOf[T any](fetch func(context.Context, pageKey, []uuid.UUID, db.Page) (map[uuid.UUID]db.Window[T], error), tag func(pageKey) string) dataloader.BatchFunc[pageKey, db.Window[T]] {
	return func(ctx context.Context, keys []pageKey) []*dataloader.Result[db.Window[T]] {
		type group struct {
			Cols      db.Columns
			Args      pageArgs
			Order     db.NamedOrder
			NoCursors bool
		}
		return batchGroups(keys, func(k pageKey) group { return group{k.Cols, k.Args, k.Order, k.NoCursors} }, func(k pageKey) uuid.UUID { return k.ID },
			func(g group, ids []uuid.UUID) (map[uuid.UUID]db.Window[T], error) {
				k := pageKey{Cols: g.Cols, Args: g.Args, Order: g.Order, NoCursors: g.NoCursors}
				p, err := db.ParsePage(g.Args.dbArgs(), tag(k))
				if err != nil {
					return nil, err
				}
				p.NoCursors = g.NoCursors
				return fetch(ctx, k, ids, p)
			})
	}
}

// batchGroups splits keys by group (e.g. column set), fetches each group in
// one call and returns the results in key order, as dataloader requires.
func batchGroups[K comparable, G comparable, V any](keys []K, groupOf func(K) G, idOf func(K) uuid.UUID,
	fetch func(G, []uuid.UUID) (map[uuid.UUID]V, error),
) []*dataloader.Result[V] {
	order := []G{}
	ids := map[G][]uuid.UUID{}
	for _, k := range keys {
		g := groupOf(k)
		if _, ok := ids[g]; !ok {
			order = append(order, g)
		}
		ids[g] = append(ids[g], idOf(k))
	}
	found := make(map[G]map[uuid.UUID]V, len(order))
	errs := make(map[G]error)
	for _, g := range order {
		found[g], errs[g] = fetch(g, ids[g])
	}
	out := make([]*dataloader.Result[V], len(keys))
	for i, k := range keys {
		g := groupOf(k)
		out[i] = &dataloader.Result[V]{Data: found[g][idOf(k)], Error: errs[g]}
	}
	return out
}

type loadersKey struct{}

// WithLoaders returns ctx carrying fresh loaders for one operation.
func WithLoaders(ctx context.Context, l *Loaders) context.Context {
	return context.WithValue(ctx, loadersKey{}, l)
}

func loadersFrom(ctx context.Context) *Loaders {
	l, _ := ctx.Value(loadersKey{}).(*Loaders)
	return l
}
