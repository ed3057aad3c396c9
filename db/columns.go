package db

import "strings"

// Columns is a set of a table's columns besides id, which is always read.
// Resolvers build it from the fields a query selects so that only those
// columns are read. It is a bitmask so it can be part of a dataloader key.
type Columns uint32

// User columns.
const (
	UserEmail Columns = 1 << iota
	UserUsername
	UserDisplayName
	UserStatus
	UserEmailVerifiedAt
	UserLastLoginAt
	UserCreatedAt
	UserUpdatedAt
)

// Role columns.
const (
	RoleName Columns = 1 << iota
	RoleDescription
	RolePermissions
	RoleUserCount
	RoleCreatedAt
	RoleUpdatedAt
)

// Group columns.
const (
	GroupName Columns = 1 << iota
	GroupDescription
	GroupMemberCount
	GroupCreatedAt
	GroupUpdatedAt
)

// AllColumns selects every column of any table.
const AllColumns Columns = 1<<32 - 1

var (
	userColumnNames  = []string{"email", "username", "display_name", "status", "email_verified_at", "last_login_at", "created_at", "updated_at"}
	roleColumnNames  = []string{"name", "description", "permissions", "user_count", "created_at", "updated_at"}
	groupColumnNames = []string{"name", "description", "member_count", "created_at", "updated_at"}
)

// list renders the set as a select list over names, prefixed with alias.
func (c Columns) list(alias string, names []string) string {
	var b strings.Builder
	b.WriteString(alias)
	b.WriteString(".id")
	for i, n := range names {
		if c&(1<<i) != 0 {
			b.WriteString(", ")
			b.WriteString(alias)
			b.WriteByte('.')
			b.WriteString(n)
		}
	}
	return b.String()
}
