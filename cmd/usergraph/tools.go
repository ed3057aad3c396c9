package main

import (
	"context"
	"fmt"
	"os"

	"github.com/urfave/cli/v3"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/seed"
)

func migrateAction(direction string) cli.ActionFunc {
	return func(ctx context.Context, cmd *cli.Command) error {
		cfg, err := loadConfig(cmd)
		if err != nil {
			return err
		}
		log := newLogger(cfg)
		database, closeDB, err := openDatabase(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer closeDB()
		m, err := db.NewMigrator(database.SQL)
		if err != nil {
			return err
		}
		switch direction {
		case "up":
			return m.Up(ctx, log)
		case "down":
			return m.Down(ctx, log)
		default:
			return m.Status(ctx, os.Stdout)
		}
	}
}

func seedCmd(ctx context.Context, cfg Config, users, groups int, progress bool) error {
	log := newLogger(cfg)
	database, closeDB, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeDB()
	if cfg.Embedded {
		if err := migrate(ctx, database, log); err != nil {
			return err
		}
	}
	opt := seed.Options{Users: users, Groups: groups}
	if progress {
		opt.Progress = os.Stderr
	}
	st, err := seed.Run(ctx, database.Pool, opt)
	if err != nil {
		return err
	}
	fmt.Printf("seeded %d users, %d role grants, %d group memberships in %s (%.0f users/s; copy %s, index rebuild %s)\n",
		st.Users, st.UserRoles, st.Memberships, st.Duration.Round(1e6), float64(st.Users)/st.Duration.Seconds(),
		st.Copy.Round(1e6), st.Rebuild.Round(1e6))
	return nil
}
