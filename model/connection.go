package model

import (
	"context"
	"time"
)

// PageInfo describes one page of a keyset-paginated list (a Relay
// connection).
type PageInfo struct {
	HasNextPage     bool
	HasPreviousPage bool
	StartCursor     *string
	EndCursor       *string
}

// Counter computes a connection's total on demand. Counting is a statement of
// its own, so it runs only when a client selects totalCount.
type Counter func(ctx context.Context) (int64, error)

// UserEdge is one user of a page with its cursor.
type UserEdge struct {
	Cursor string
	Node   *User
}

// UserConnection is a page of users.
type UserConnection struct {
	Edges    []*UserEdge
	PageInfo *PageInfo
	Count    Counter
}

// Nodes returns the page's users without their cursors.
func (c *UserConnection) Nodes() []*User {
	return nodesOf(c.Edges, func(e *UserEdge) *User { return e.Node })
}

// TotalCount counts the users across all pages.
func (c *UserConnection) TotalCount(ctx context.Context) (int64, error) { return c.Count(ctx) }

// RoleEdge is one role of a page with its cursor.
type RoleEdge struct {
	Cursor string
	Node   *Role
}

// RoleConnection is a page of roles.
type RoleConnection struct {
	Edges    []*RoleEdge
	PageInfo *PageInfo
	Count    Counter
}

// Nodes returns the page's roles without their cursors.
func (c *RoleConnection) Nodes() []*Role {
	return nodesOf(c.Edges, func(e *RoleEdge) *Role { return e.Node })
}

// TotalCount counts the roles across all pages.
func (c *RoleConnection) TotalCount(ctx context.Context) (int64, error) { return c.Count(ctx) }

// GroupEdge is one group of a page with its cursor.
type GroupEdge struct {
	Cursor string
	Node   *Group
}

// GroupConnection is a page of groups.
type GroupConnection struct {
	Edges    []*GroupEdge
	PageInfo *PageInfo
	Count    Counter
}

// Nodes returns the page's groups without their cursors.
func (c *GroupConnection) Nodes() []*Group {
	return nodesOf(c.Edges, func(e *GroupEdge) *Group { return e.Node })
}

// TotalCount counts the groups across all pages.
func (c *GroupConnection) TotalCount(ctx context.Context) (int64, error) { return c.Count(ctx) }

// UserGroupEdge is one group of a user's page of groups, with the user's
// membership in it.
type UserGroupEdge struct {
	Cursor   string
	Node     *Group
	Role     GroupMemberRole
	JoinedAt time.Time
}

// UserGroupConnection is a page of one user's groups.
type UserGroupConnection struct {
	Edges    []*UserGroupEdge
	PageInfo *PageInfo
	Count    Counter
}

// Nodes returns the page's groups without their cursors.
func (c *UserGroupConnection) Nodes() []*Group {
	return nodesOf(c.Edges, func(e *UserGroupEdge) *Group { return e.Node })
}

// TotalCount counts the user's groups across all pages.
func (c *UserGroupConnection) TotalCount(ctx context.Context) (int64, error) { return c.Count(ctx) }

// GroupMemberEdge is one member of a group's page of members, with their
// membership.
type GroupMemberEdge struct {
	Cursor   string
	Node     *User
	Role     GroupMemberRole
	JoinedAt time.Time
}

// GroupMemberConnection is a page of one group's members.
type GroupMemberConnection struct {
	Edges    []*GroupMemberEdge
	PageInfo *PageInfo
	Count    Counter
}

// Nodes returns the page's members without their cursors.
func (c *GroupMemberConnection) Nodes() []*User {
	return nodesOf(c.Edges, func(e *GroupMemberEdge) *User { return e.Node })
}

// TotalCount counts the group's members across all pages.
func (c *GroupMemberConnection) TotalCount(ctx context.Context) (int64, error) { return c.Count(ctx) }

// nodesOf lists the nodes of a page's edges, for the connections' nodes
// field.
func nodesOf[E, N any](edges []*E, node func(*E) *N) []*N {
	out := make([]*N, len(edges))
	for i, e := range edges {
		out[i] = node(e)
	}
	return out
}
