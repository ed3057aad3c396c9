package resolver

import (
	"context"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/graph"
	"github.com/usergraph/usergraph/model"
)

func newUserInput(in graph.CreateUserInput) (model.NewUser, error) {
	nu := model.NewUser{Email: in.Email, Username: in.Username, Status: model.UserStatusActive}
	if err := model.ValidateEmail("input.email", in.Email); err != nil {
		return nu, err
	}
	if err := model.ValidateUsername("input.username", in.Username); err != nil {
		return nu, err
	}
	if in.DisplayName != nil {
		if err := model.ValidateText("input.displayName", *in.DisplayName, 0, 100); err != nil {
			return nu, err
		}
		nu.DisplayName = *in.DisplayName
	}
	if in.Status != nil {
		nu.Status = *in.Status
	}
	return nu, nil
}

func userUpdateInput(in graph.UpdateUserInput) (uuid.UUID, model.UserUpdate, error) {
	up := model.UserUpdate{Email: in.Email, Username: in.Username, DisplayName: in.DisplayName, Status: in.Status}
	id, err := model.ParseGlobalIDOf("input.id", model.KindUser, in.ID)
	if err != nil {
		return id, up, err
	}
	if in.Email != nil {
		if err := model.ValidateEmail("input.email", *in.Email); err != nil {
			return id, up, err
		}
	}
	if in.Username != nil {
		if err := model.ValidateUsername("input.username", *in.Username); err != nil {
			return id, up, err
		}
	}
	if in.DisplayName != nil {
		if err := model.ValidateText("input.displayName", *in.DisplayName, 0, 100); err != nil {
			return id, up, err
		}
	}
	return id, up, nil
}

func (r *Resolver) setStatus(ctx context.Context, gid string, s model.UserStatus) (*model.User, error) {
	id, err := model.ParseGlobalIDOf("input.id", model.KindUser, gid)
	if err != nil {
		return nil, err
	}
	action := "user.reactivate"
	if s != model.UserStatusActive {
		action = "user.deactivate"
	}
	var u *model.User
	err = r.writeTx(ctx, s != model.UserStatusActive, func(tx *db.Tx) (change, error) {
		var err error
		u, err = tx.Users().Update(ctx, id, model.UserUpdate{Status: &s}, r.now())
		return change{action, model.KindUser, id, nil}, err
	})
	if err != nil {
		return nil, err
	}
	if s != model.UserStatusActive {
		// Only ACTIVE users may be logged in: end their sessions now.
		if err := r.sessions.RevokeAll(ctx, nil, id); err != nil {
			return nil, err
		}
	}
	r.changed(ctx)
	return u, nil
}

// changedFields names the fields a partial update sets, for the audit log
// (names only: values may be personal data).
func changedFields(up model.UserUpdate) []string {
	var f []string
	if up.Email != nil {
		f = append(f, "email")
	}
	if up.Username != nil {
		f = append(f, "username")
	}
	if up.DisplayName != nil {
		f = append(f, "displayName")
	}
	if up.Status != nil {
		f = append(f, "status")
	}
	return f
}
