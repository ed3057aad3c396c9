package db

import (
	"database/sql"
	"database/sql/driver"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"

	"github.com/usergraph/usergraph/model"
)

// Reading rows without gorm's Scan: gorm finds each column's struct field by
// reflection, row by row, and that was the largest single cost of a nested
// query (the groups of 50 users). The stores' hot reads (pages, nested
// pages, lookups by id) still build and send their statement through gorm,
// so its callbacks (and the replica routing plugged into them) keep
// applying, but they scan with database/sql into destinations bound once
// per statement.

// bindUser appends to dest the scan destinations in u of the columns
// cols.list reads: id, then each selected column in the order of
// userColumnNames. The two must stay in step (bindRole and bindGroup alike).
func bindUser(u *model.User, cols Columns, dest []any) []any {
	dest = append(dest, &u.ID)
	fields := [...]any{&u.Email, &u.Username, &u.DisplayName, (*string)(&u.Status), &u.EmailVerifiedAt, &u.LastLoginAt,
		&u.CreatedAt, &u.UpdatedAt}
	return appendSelected(dest, cols, fields[:])
}

// bindRole is bindUser for roles (roleColumnNames).
func bindRole(r *model.Role, cols Columns, dest []any) []any {
	dest = append(dest, &r.ID)
	fields := [...]any{&r.Name, &r.Description, &r.Permissions, &r.UserCount, &r.CreatedAt, &r.UpdatedAt}
	return appendSelected(dest, cols, fields[:])
}

// bindGroup is bindUser for groups (groupColumnNames).
func bindGroup(g *model.Group, cols Columns, dest []any) []any {
	dest = append(dest, &g.ID)
	fields := [...]any{&g.Name, &g.Description, &g.MemberCount, &g.CreatedAt, &g.UpdatedAt}
	return appendSelected(dest, cols, fields[:])
}

// appendSelected appends the fields whose bit is set in cols.
func appendSelected(dest []any, cols Columns, fields []any) []any {
	for i, f := range fields {
		if cols&(1<<i) != 0 {
			dest = append(dest, f)
		}
	}
	return dest
}

// scanRows sends q (a gorm statement, built with Raw or Table) and scans
// every row into a T whose destinations bind returns. Each row is read into
// one scratch value and copied out, so bind runs once per statement: a bound
// field is overwritten by every row (a NULL sets a pointer to nil), an
// unbound one stays zero. sizeHint pre-sizes the result (the LIMIT, or the
// number of keys).
func scanRows[T any](q *gorm.DB, sizeHint int, bind func(*T) []any) ([]T, error) {
	rows, err := q.Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return collect(rows, sizeHint, bind)
}

// collect is scanRows once the statement has run.
func collect[T any](rows *sql.Rows, sizeHint int, bind func(*T) []any) ([]T, error) {
	out := make([]T, 0, sizeHint)
	var row T
	dest := bind(&row)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// uuidList passes ids as one uuid[] parameter. gorm would expand a plain
// slice into a list of parameters, one per id; a driver.Valuer it passes on
// as it is. pgx then finds a pgtype.ArrayGetter and encodes the ids in
// binary, as they are: given text (as a pq.StringArray would be), it parses
// the text back into an array first, at several allocations per id.
type uuidList []uuid.UUID

// Dimensions implements pgtype.ArrayGetter.
func (l uuidList) Dimensions() []pgtype.ArrayDimension {
	if l == nil {
		return nil
	}
	return []pgtype.ArrayDimension{{Length: int32(len(l)), LowerBound: 1}}
}

// Index implements pgtype.ArrayGetter. A pointer into the list, so that
// boxing it allocates nothing.
func (l uuidList) Index(i int) any { return (*uuidElem)(&l[i]) }

// IndexType implements pgtype.ArrayGetter.
func (uuidList) IndexType() any { return new(uuidElem) }

// uuidElem is an element of a uuidList as pgx encodes it.
type uuidElem uuid.UUID

// UUIDValue implements pgtype.UUIDValuer.
func (e *uuidElem) UUIDValue() (pgtype.UUID, error) { return pgtype.UUID{Bytes: *e, Valid: true}, nil }

// Value implements driver.Valuer, for gorm and for rendering a statement
// with its values (ToSQL): the ids in PostgreSQL's array syntax.
func (l uuidList) Value() (driver.Value, error) {
	if len(l) == 0 {
		return "{}", nil
	}
	const idLen = 36
	b := make([]byte, 0, 2+len(l)*(idLen+1))
	b = append(b, '{')
	for i, id := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = model.AppendUUID(b, id)
	}
	b = append(b, '}')
	return string(b), nil
}

// uuidArg passes one id the way uuidList passes many: pgx encodes it in
// binary through UUIDValue, where a uuid.UUID (a driver.Valuer) went
// through its text form and back, at a few allocations and a formatted
// print each. Value serves gorm, which only renders it.
type uuidArg uuid.UUID

// UUIDValue implements pgtype.UUIDValuer.
func (a uuidArg) UUIDValue() (pgtype.UUID, error) { return pgtype.UUID{Bytes: a, Valid: true}, nil }

// Value implements driver.Valuer.
func (a uuidArg) Value() (driver.Value, error) { return uuid.UUID(a).String(), nil }
