package resolver

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/graph"
	"github.com/usergraph/usergraph/model"
)

func validateRole(name, description *string, perms []string) error {
	if name != nil {
		if err := model.ValidateName("input.name", *name); err != nil {
			return err
		}
	}
	if description != nil {
		if err := model.ValidateText("input.description", *description, 0, 1000); err != nil {
			return err
		}
	}
	return model.ValidatePermissions("input.permissions", perms)
}

// changeAssignment runs a grant or revocation and reads both sides back for
// the payload.
func (r *Resolver) changeAssignment(ctx context.Context, in graph.RoleAssignmentInput, action string,
	apply func(ctx context.Context, rs *db.RoleStore, userID, roleID uuid.UUID, now time.Time) error,
) (*model.User, *model.Role, error) {
	userID, err := model.ParseGlobalIDOf("input.userId", model.KindUser, in.UserID)
	if err != nil {
		return nil, nil, err
	}
	roleID, err := model.ParseGlobalIDOf("input.roleId", model.KindRole, in.RoleID)
	if err != nil {
		return nil, nil, err
	}
	if err := r.writeTx(ctx, action == "role.revoke", func(tx *db.Tx) (change, error) {
		return change{action, model.KindUser, userID, map[string]any{"role": in.RoleID}}, apply(ctx, tx.Roles(), userID, roleID, r.now())
	}); err != nil {
		return nil, nil, err
	}
	r.sessions.PermissionsChanged(ctx)
	r.changed(ctx)
	u, err := r.db.Users().ByID(ctx, db.AllColumns, userID)
	if err != nil {
		return nil, nil, err
	}
	ros, err := r.db.Roles().ByIDs(ctx, db.AllColumns, []uuid.UUID{roleID})
	if err != nil {
		return nil, nil, err
	}
	if len(ros) == 0 {
		return nil, nil, model.NotFound("role")
	}
	return u, &ros[0], nil
}
