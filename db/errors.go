package db

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/usergraph/usergraph/model"
)

// uniqueFields maps unique constraints to the input field that violated them,
// so a duplicate becomes a CONFLICT naming the field. This also covers two
// requests racing past an application-level check: the index decides.
var uniqueFields = map[string]struct{ field, msg string }{
	"users_email_key":    {"email", "email address is already in use"},
	"users_username_key": {"username", "username is already taken"},
	"roles_name_key":     {"name", "a role with this name already exists"},
	"groups_name_key":    {"name", "a group with this name already exists"},
	"group_members_pkey": {"userId", "the user is already a member of this group"},
}

// translate turns a driver error into a model error where it has a meaning
// for the client, and wraps it with op otherwise.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	var me *model.Error
	if errors.As(err, &me) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			if f, ok := uniqueFields[pe.ConstraintName]; ok {
				return model.Conflict("input."+f.field, "%s", f.msg)
			}
			return model.Conflict("input", "already exists")
		case "23514": // check_violation: the validators should have caught it
			return model.Invalid("input", "a value is out of range")
		case "57014": // query_canceled (statement_timeout or client gone)
			return fmt.Errorf("%s: statement timed out or was canceled: %w", op, err)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}
