package model

import (
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// Role is a named set of permissions granted to users.
type Role struct {
	ID          uuid.UUID `gorm:"column:id;primaryKey"`
	Name        string    `gorm:"column:name"`
	Description string    `gorm:"column:description"`
	// Permissions uses pq.StringArray because database/sql (under gorm)
	// cannot scan a PostgreSQL text[] into a plain []string.
	Permissions pq.StringArray `gorm:"column:permissions;type:text[]"`
	UserCount   int64          `gorm:"column:user_count"`
	CreatedAt   time.Time      `gorm:"column:created_at"`
	UpdatedAt   time.Time      `gorm:"column:updated_at"`
}

// TableName tells gorm the table.
func (Role) TableName() string { return "roles" }

// NewRole is the input to creating a role.
type NewRole struct {
	Name        string
	Description string
	Permissions []string
}

// RoleUpdate is a partial update: nil fields are left alone.
type RoleUpdate struct {
	Name        *string
	Description *string
	Permissions *[]string
}

// NamedOrderField is the sort key of role and group listings.
type NamedOrderField string

// The role and group sort keys.
const (
	NamedOrderName      NamedOrderField = "NAME"
	NamedOrderCreatedAt NamedOrderField = "CREATED_AT"
)

// PermissionList returns the permissions as a plain slice for the API.
func (r *Role) PermissionList() []string { return r.Permissions }

// BuiltinRoles are the roles every installation has. Authorization checks
// permissions, never role names; these only give a fresh installation
// sensible roles to grant.
var BuiltinRoles = []struct {
	Name, Description string
	Permissions       []string
}{
	{"admin", "Manages everything", []string{"users:read", "users:write", "roles:manage", "groups:manage", "audit:read", "jobs:manage"}},
	{"manager", "Manages users and groups", []string{"users:read", "users:write", "groups:manage"}},
	{"member", "A regular user", []string{}},
}
