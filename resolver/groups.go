package resolver

import (
	"context"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/model"
)

func validateGroup(name, description *string) error {
	if name != nil {
		if err := model.ValidateName("input.name", *name); err != nil {
			return err
		}
	}
	if description != nil {
		return model.ValidateText("input.description", *description, 0, 1000)
	}
	return nil
}

// changeMembership runs a membership change and reads both sides back for
// the payload.
func (r *Resolver) changeMembership(ctx context.Context, groupGID, userGID, action string,
	apply func(gs *db.GroupStore, groupID, userID uuid.UUID) error,
) (*model.Group, *model.User, error) {
	groupID, err := model.ParseGlobalIDOf("input.groupId", model.KindGroup, groupGID)
	if err != nil {
		return nil, nil, err
	}
	userID, err := model.ParseGlobalIDOf("input.userId", model.KindUser, userGID)
	if err != nil {
		return nil, nil, err
	}
	if err := r.write(ctx, func(tx *db.Tx) (change, error) {
		return change{action, model.KindGroup, groupID, map[string]any{"user": userGID}}, apply(tx.Groups(), groupID, userID)
	}); err != nil {
		return nil, nil, err
	}
	r.changed(ctx)
	gs, err := r.db.Groups().ByIDs(ctx, db.AllColumns, []uuid.UUID{groupID})
	if err != nil {
		return nil, nil, err
	}
	if len(gs) == 0 {
		return nil, nil, model.NotFound("group")
	}
	u, err := r.db.Users().ByID(ctx, db.AllColumns, userID)
	if err != nil {
		return nil, nil, err
	}
	return &gs[0], u, nil
}
