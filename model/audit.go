package model

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// AuditEvent is one entry of the audit log.
type AuditEvent struct {
	ID         uuid.UUID       `gorm:"column:id"`
	OccurredAt time.Time       `gorm:"column:occurred_at"`
	ActorID    *uuid.UUID      `gorm:"column:actor_id"`
	Action     string          `gorm:"column:action"`
	TargetType *string         `gorm:"column:target_type"`
	TargetID   *uuid.UUID      `gorm:"column:target_id"`
	IP         *string         `gorm:"column:ip"`
	UserAgent  string          `gorm:"column:user_agent"`
	Metadata   json.RawMessage `gorm:"column:metadata;type:jsonb"`
}

// TableName tells gorm the table.
func (AuditEvent) TableName() string { return "audit_events" }

// GetID returns the event's global ID.
func (e AuditEvent) GetID() string { return GlobalID(KindAudit, e.ID) }

// IsNode marks AuditEvent as a Node for gqlgen.
func (AuditEvent) IsNode() {}

// TargetGlobalID is the global ID of the object acted on, if any.
func (e *AuditEvent) TargetGlobalID() *string {
	if e.TargetID == nil || e.TargetType == nil {
		return nil
	}
	id := GlobalID(Kind(*e.TargetType), *e.TargetID)
	return &id
}

// MetadataJSON is the metadata as JSON text.
func (e *AuditEvent) MetadataJSON() string {
	if len(e.Metadata) == 0 {
		return "{}"
	}
	return string(e.Metadata)
}
