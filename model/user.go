package model

import (
	"time"

	"github.com/google/uuid"
)

// UserStatus is the lifecycle state of an account.
type UserStatus string

// The user statuses; only ACTIVE users may sign in.
const (
	UserStatusActive      UserStatus = "ACTIVE"
	UserStatusPending     UserStatus = "PENDING"
	UserStatusSuspended   UserStatus = "SUSPENDED"
	UserStatusDeactivated UserStatus = "DEACTIVATED"
)

// Valid reports whether s is a known status.
func (s UserStatus) Valid() bool {
	switch s {
	case UserStatusActive, UserStatusPending, UserStatusSuspended, UserStatusDeactivated:
		return true
	}
	return false
}

// User is an account. Stores read only the columns a query asks for, so any
// field other than ID may hold its zero value when it was not selected.
type User struct {
	ID              uuid.UUID  `gorm:"column:id;primaryKey"`
	Email           string     `gorm:"column:email"`
	Username        string     `gorm:"column:username"`
	DisplayName     string     `gorm:"column:display_name"`
	Status          UserStatus `gorm:"column:status"`
	EmailVerifiedAt *time.Time `gorm:"column:email_verified_at"`
	LastLoginAt     *time.Time `gorm:"column:last_login_at"`
	CreatedAt       time.Time  `gorm:"column:created_at"`
	UpdatedAt       time.Time  `gorm:"column:updated_at"`
	DeletedAt       *time.Time `gorm:"column:deleted_at"`
}

// TableName tells gorm the table; it would otherwise guess from the type.
func (User) TableName() string { return "users" }

// NewUser is the input to creating a user.
type NewUser struct {
	Email       string
	Username    string
	DisplayName string
	Status      UserStatus // Defaults to ACTIVE.
}

// UserUpdate is a partial update: nil fields are left alone.
type UserUpdate struct {
	Email       *string
	Username    *string
	DisplayName *string
	Status      *UserStatus
}

// UserFilter narrows a user listing. Zero fields do not filter.
type UserFilter struct {
	Statuses      []UserStatus
	RoleID        *uuid.UUID
	GroupID       *uuid.UUID
	Search        string
	CreatedAfter  *time.Time
	CreatedBefore *time.Time
	EmailVerified *bool
}

// UserOrderField is a sort key of user listings.
type UserOrderField string

// The user sort keys.
const (
	UserOrderCreatedAt   UserOrderField = "CREATED_AT"
	UserOrderEmail       UserOrderField = "EMAIL"
	UserOrderUsername    UserOrderField = "USERNAME"
	UserOrderDisplayName UserOrderField = "DISPLAY_NAME"
)

// OrderDirection is ascending or descending.
type OrderDirection string

// The two directions.
const (
	Asc  OrderDirection = "ASC"
	Desc OrderDirection = "DESC"
)
