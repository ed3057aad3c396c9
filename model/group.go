package model

import (
	"time"

	"github.com/google/uuid"
)

// Group is a named set of users, each a MEMBER or an ADMIN of it.
type Group struct {
	ID          uuid.UUID `gorm:"column:id;primaryKey"`
	Name        string    `gorm:"column:name"`
	Description string    `gorm:"column:description"`
	MemberCount int64     `gorm:"column:member_count"`
	CreatedAt   time.Time `gorm:"column:created_at"`
	UpdatedAt   time.Time `gorm:"column:updated_at"`
}

// TableName tells gorm the table.
func (Group) TableName() string { return "groups" }

// GroupMemberRole is a user's role within one group.
type GroupMemberRole string

// The group member roles.
const (
	GroupMember GroupMemberRole = "MEMBER"
	GroupAdmin  GroupMemberRole = "ADMIN"
)

// Valid reports whether r is a known role.
func (r GroupMemberRole) Valid() bool { return r == GroupMember || r == GroupAdmin }

// NewGroup is the input to creating a group.
type NewGroup struct {
	Name        string
	Description string
}

// GroupUpdate is a partial update: nil fields are left alone.
type GroupUpdate struct {
	Name        *string
	Description *string
}

// Membership is a user's place in a group, as seen from either side.
type Membership struct {
	GroupID  uuid.UUID       `gorm:"column:group_id"`
	UserID   uuid.UUID       `gorm:"column:user_id"`
	Role     GroupMemberRole `gorm:"column:role"`
	JoinedAt time.Time       `gorm:"column:joined_at"`
}
