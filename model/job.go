package model

import "github.com/google/uuid"

// KindJob prefixes the global ID of a background job. Job ids are River's
// integers, not UUIDs, so they have their own encoder (JobGlobalID).
const KindJob Kind = "Job"

// UserImport is a bulk import's progress and outcome as the API shows it;
// its row errors are loaded on demand.
type UserImport struct {
	ID             uuid.UUID
	IdempotencyKey string
	RowsTotal      *int
	RowsProcessed  int
	Inserted       int
	Failed         int
}
