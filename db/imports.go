package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/lib/pq"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/usergraph/usergraph/model"
)

// Import is a bulk user import and its outcome so far.
type Import struct {
	ID             uuid.UUID  `gorm:"column:id;primaryKey"`
	JobID          int64      `gorm:"column:job_id"`
	RequestedBy    uuid.UUID  `gorm:"column:requested_by"`
	IdempotencyKey string     `gorm:"column:idempotency_key"`
	CSV            string     `gorm:"column:csv"`
	SourceURL      *string    `gorm:"column:source_url"`
	RowsTotal      *int       `gorm:"column:rows_total"`
	RowsDone       int        `gorm:"column:rows_done"`
	Inserted       int        `gorm:"column:inserted"`
	Failed         int        `gorm:"column:failed"`
	CreatedAt      time.Time  `gorm:"column:created_at"`
	FinishedAt     *time.Time `gorm:"column:finished_at"`
}

// TableName tells gorm the table.
func (Import) TableName() string { return "user_imports" }

// importSummary is every column but the CSV, which only the worker reads.
var importSummary = []string{"id", "job_id", "requested_by", "idempotency_key", "source_url", "rows_total",
	"rows_done", "inserted", "failed", "created_at", "finished_at"}

// ImportRow is one valid data row of an import.
type ImportRow struct {
	Line                         int
	Email, Username, DisplayName string
	Status                       model.UserStatus
}

// ImportError is a row that was not imported, and why.
type ImportError struct {
	Line    int    `gorm:"column:line"`
	Field   string `gorm:"column:field"`
	Message string `gorm:"column:message"`
}

// ImportStore keeps import records.
type ImportStore struct{ db *gorm.DB }

// Imports returns the import store on the pool.
func (d *DB) Imports() *ImportStore { return &ImportStore{db: d.Gorm} }

// Imports returns the import store inside the transaction.
func (t *Tx) Imports() *ImportStore { return &ImportStore{db: t.Gorm} }

// Existing returns the import the user already requested under key, or nil.
func (s *ImportStore) Existing(ctx context.Context, requestedBy uuid.UUID, key string) (*Import, error) {
	var rows []Import
	err := s.db.WithContext(ctx).Select(importSummary).Where("requested_by = ? AND idempotency_key = ?", requestedBy, key).
		Limit(1).Find(&rows).Error
	if err != nil || len(rows) == 0 {
		return nil, translate("error reading import", err)
	}
	return &rows[0], nil
}

// Create records a new import. Run it in a transaction after locking the
// key (LockKey) so two concurrent requests with one key make one import.
func (s *ImportStore) Create(ctx context.Context, im *Import) error {
	return translate("error recording import", s.db.WithContext(ctx).Create(im).Error)
}

// LockKey serializes requests with the same idempotency key until the
// transaction ends.
func (s *ImportStore) LockKey(ctx context.Context, requestedBy uuid.UUID, key string) error {
	return translate("error locking import key", s.db.WithContext(ctx).
		Exec("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", "user_imports:"+requestedBy.String()+":"+key).Error)
}

// ByJobIDs returns the imports of the given jobs (without their CSV).
func (s *ImportStore) ByJobIDs(ctx context.Context, jobIDs []int64) ([]Import, error) {
	var rows []Import
	if len(jobIDs) == 0 {
		return nil, nil
	}
	err := s.db.WithContext(ctx).Select(importSummary).Where("job_id = ANY(?)", pq.Int64Array(jobIDs)).Find(&rows).Error
	return rows, translate("error reading imports", err)
}

// ForWork returns an import with its CSV; NOT_FOUND when there is none.
func (s *ImportStore) ForWork(ctx context.Context, id uuid.UUID) (*Import, error) {
	var im Import
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&im).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, model.NotFound("import")
	}
	return &im, translate("error reading import", err)
}

// SetCSV stores the CSV fetched from the import's URL and its row count.
func (s *ImportStore) SetCSV(ctx context.Context, id uuid.UUID, csv string) error {
	return translate("error storing import data", s.db.WithContext(ctx).
		Exec("UPDATE user_imports SET csv = ? WHERE id = ? AND csv = ''", csv, id).Error)
}

// Errors returns up to limit row errors of an import, by line.
func (s *ImportStore) Errors(ctx context.Context, id uuid.UUID, limit int) ([]ImportError, error) {
	var rows []ImportError
	err := s.db.WithContext(ctx).Table("user_import_errors").Select("line, field, message").
		Where("import_id = ?", id).Order(clause.OrderByColumn{Column: clause.Column{Name: "line"}}).Order("field").
		Limit(limit).Find(&rows).Error
	return rows, translate("error reading import errors", err)
}

// Finish stamps the import finished with its total row count.
func (s *ImportStore) Finish(ctx context.Context, id uuid.UUID, total int, now time.Time) error {
	return translate("error finishing import", s.db.WithContext(ctx).
		Exec("UPDATE user_imports SET rows_total = ?, finished_at = ? WHERE id = ?", total, now, id).Error)
}

// OnInserted runs in an import batch's transaction with the ids of the users
// the batch inserted, so that what follows from them (welcome emails)
// commits or rolls back with them.
type OnInserted func(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) error

// ErrImportMoved means another attempt of the same import committed a batch
// first (a rescued job racing a slow one); the caller starts again from the
// committed position.
var ErrImportMoved = errors.New("the import progressed in another attempt")

// ImportBatch applies one batch in one transaction: the valid rows go in
// with COPY through a temporary table (a row whose email or username is
// taken, also by an earlier row of the same file, becomes a row error), the
// invalid rows' errors are stored, and the position moves from from to to.
// Because all of it commits together, a retried job resumes at the last
// committed position and never inserts a row twice.
//
// onInserted, when not nil, runs in the batch's transaction with the ids of
// the users it inserted (the import's welcome emails are enqueued there).
func (d *DB) ImportBatch(ctx context.Context, importID uuid.UUID, from, to int, rows []ImportRow, bad []ImportError, now time.Time,
	onInserted OnInserted) (inserted int, err error) {
	err = pgx.BeginFunc(ctx, d.Pool, func(tx pgx.Tx) error {
		var done int
		if err := tx.QueryRow(ctx, "SELECT rows_done FROM user_imports WHERE id = $1 FOR UPDATE", importID).Scan(&done); err != nil {
			return fmt.Errorf("error locking import: %w", err)
		}
		if done != from {
			return ErrImportMoved
		}
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE import_rows (line int, id uuid, email text, username text,
			display_name text, status text) ON COMMIT DROP`); err != nil {
			return fmt.Errorf("error creating import table: %w", err)
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"import_rows"}, []string{"line", "id", "email", "username", "display_name", "status"},
			pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
				r := rows[i]
				return []any{r.Line, uuid.Must(uuid.NewV7()), normalizeEmail(r.Email), r.Username, r.DisplayName, string(r.Status)}, nil
			}))
		if err != nil {
			return fmt.Errorf("error copying import rows: %w", err)
		}
		idRows, err := tx.Query(ctx, `INSERT INTO users (id, email, username, display_name, status, created_at, updated_at)
			SELECT id, email, username, display_name, status, $1, $1 FROM import_rows ORDER BY line
			ON CONFLICT DO NOTHING
			RETURNING id`, now)
		if err != nil {
			return fmt.Errorf("error inserting imported users: %w", err)
		}
		ids, err := pgx.CollectRows(idRows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return fmt.Errorf("error inserting imported users: %w", err)
		}
		inserted = len(ids)
		if onInserted != nil && len(ids) > 0 {
			if err := onInserted(ctx, tx, ids); err != nil {
				return err
			}
		}
		lines := make([]int32, len(bad))
		fields := make([]string, len(bad))
		msgs := make([]string, len(bad))
		for i, b := range bad {
			lines[i], fields[i], msgs[i] = int32(b.Line), b.Field, b.Message
		}
		if _, err := tx.Exec(ctx, `INSERT INTO user_import_errors (import_id, line, field, message)
			SELECT $1::uuid, r.line, CASE WHEN EXISTS (SELECT 1 FROM users x WHERE x.email = r.email) THEN 'email' ELSE 'username' END,
			       'already in use'
			FROM import_rows r WHERE NOT EXISTS (SELECT 1 FROM users x WHERE x.id = r.id)
			UNION ALL
			SELECT $1::uuid, l, f, m FROM unnest($2::int[], $3::text[], $4::text[]) AS b(l, f, m)
			ON CONFLICT DO NOTHING`, importID, lines, fields, msgs); err != nil {
			return fmt.Errorf("error recording import errors: %w", err)
		}
		_, err = tx.Exec(ctx, `UPDATE user_imports SET rows_done = $2, inserted = inserted + $3, failed = failed + $4 WHERE id = $1`,
			importID, to, inserted, len(rows)-inserted+len(bad))
		if err != nil {
			return fmt.Errorf("error recording import progress: %w", err)
		}
		return nil
	})
	return inserted, err
}
