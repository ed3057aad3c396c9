package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/model"
)

// The embedded default's demo administrator. Its password is printed at
// start-up and in the README: it exists only on a developer's machine.
const (
	demoAdminEmail    = "admin@example.com"
	demoAdminUsername = "admin"
	demoAdminPassword = "usergraph-demo-admin"
)

func adminCreateAction(ctx context.Context, cmd *cli.Command) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	password := cmd.String("password")
	if password == "" {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return errors.New("--password: give it with --password, ADMIN_PASSWORD or on standard input")
		}
		password = strings.TrimRight(line, "\r\n")
	}
	log := newLogger(cfg)
	database, closeDB, err := openForTool(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeDB()
	u, err := createAdmin(ctx, database, auth.NewHasher(cfg.Hash, auth.Concurrency{}), cmd.String("email"), cmd.String("username"), password, cmd.String("display-name"))
	if err != nil {
		var me *model.Error
		if errors.As(err, &me) {
			return fmt.Errorf("%s: %s", strings.TrimPrefix(me.Field, "input."), me.Message)
		}
		return err
	}
	fmt.Printf("created admin %s (%s)\n", u.Username, u.Email)
	return nil
}

// createAdmin creates an active, verified user holding the admin role.
func createAdmin(ctx context.Context, database *db.DB, hasher *auth.Hasher, email, username, password, displayName string) (*model.User, error) {
	if err := model.ValidateEmail("input.email", email); err != nil {
		return nil, err
	}
	if err := model.ValidateUsername("input.username", username); err != nil {
		return nil, err
	}
	if err := auth.ValidatePassword("input.password", password); err != nil {
		return nil, err
	}
	hash, err := hasher.Hash(password)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var u *model.User
	err = database.InTx(ctx, func(tx *db.Tx) error {
		if err := tx.Roles().EnsureBuiltin(ctx, now); err != nil {
			return err
		}
		var err error
		if u, err = tx.Users().Create(ctx, model.NewUser{Email: email, Username: username, DisplayName: displayName}, now); err != nil {
			return err
		}
		if err := tx.Users().SetPassword(ctx, u.ID, hash, now); err != nil {
			return err
		}
		if err := tx.Users().MarkEmailVerified(ctx, u.ID, now); err != nil {
			return err
		}
		return tx.Roles().AssignByName(ctx, u.ID, "admin", now)
	})
	return u, err
}

// ensureDemoAdmin creates the demo administrator on the embedded default's
// first start and says how to log in.
func ensureDemoAdmin(ctx context.Context, database *db.DB, hasher *auth.Hasher, log *slog.Logger) error {
	if _, err := database.Users().ByEmail(ctx, 0, demoAdminEmail); err == nil {
		return nil
	} else if model.ErrorCode(err) != model.CodeNotFound {
		return err
	}
	if _, err := createAdmin(ctx, database, hasher, demoAdminEmail, demoAdminUsername, demoAdminPassword, "Demo Admin"); err != nil {
		return fmt.Errorf("error creating the demo admin: %w", err)
	}
	log.Info("created the demo admin (embedded default only)", "identifier", demoAdminEmail, "password", demoAdminPassword)
	return nil
}
