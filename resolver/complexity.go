package resolver

import (
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/graph"
)

// listGuess is what an unpaginated list (a user's roles, typically one to
// three) is assumed to hold.
const listGuess = 3

// Complexity prices each field for gqlgen's complexity limit: a field costs
// 1 plus its children, and a list field costs its page size (first or
// last, else the default page) times its children. So
// users(first:100){groups(first:100){members(first:100){...}}} costs a
// million and is refused before any resolver runs, while a full admin page
// of 100 users with their roles and five groups stays near 2,000.
func Complexity() graph.ComplexityRoot {
	var c graph.ComplexityRoot
	page := func(child int, first, last *int) int {
		n := db.DefaultPageSize
		switch {
		case first != nil:
			n = *first
		case last != nil:
			n = *last
		}
		if n < 1 {
			n = 1
		}
		return 1 + n*child
	}
	c.Query.Users = func(child int, first *int, _ *string, last *int, _ *string, _ *graph.UserFilter, _ *graph.UserOrder) int {
		return page(child, first, last)
	}
	c.Query.Roles = func(child int, first *int, _ *string, last *int, _ *string, _ *graph.RoleOrder) int {
		return page(child, first, last)
	}
	c.Query.Groups = func(child int, first *int, _ *string, last *int, _ *string, _ *graph.GroupOrder) int {
		return page(child, first, last)
	}
	c.Query.AuditEvents = func(child int, first *int, _ *string, last *int, _ *string, _ *graph.AuditEventFilter) int {
		return page(child, first, last)
	}
	c.Query.MySessions = func(child int, first *int, _ *string, last *int, _ *string) int { return page(child, first, last) }
	c.Query.Jobs = func(child int, first *int, _ *string, _ *graph.JobFilter) int { return page(child, first, nil) }
	c.Query.Nodes = func(child int, ids []string) int { return 1 + max(len(ids), 1)*child }
	c.User.Groups = func(child int, first *int, _ *string, last *int, _ *string, _ *graph.GroupOrder) int {
		return page(child, first, last)
	}
	c.User.Sessions = func(child int, first *int, _ *string, last *int, _ *string) int { return page(child, first, last) }
	c.User.Roles = func(child int) int { return 1 + listGuess*child }
	c.Group.Members = func(child int, first *int, _ *string, last *int, _ *string) int { return page(child, first, last) }
	c.Role.Users = func(child int, first *int, _ *string, last *int, _ *string) int { return page(child, first, last) }
	c.UserImport.Errors = func(child int, first *int) int {
		n := 100
		if first != nil {
			n = max(*first, 1)
		}
		return 1 + n*child
	}
	return c
}
