package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/jobs"
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
			return migrate(ctx, database, log)
		case "down":
			return m.Down(ctx, log)
		default:
			return m.Status(ctx, os.Stdout)
		}
	}
}

func seedCmd(ctx context.Context, cfg Config, users, groups int, progress bool) error {
	log := newLogger(cfg)
	database, closeDB, err := openForTool(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeDB()
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

// openForTool opens the database for a one-off command. On the embedded
// default it also applies the migrations, as `make run` would have: the
// private database is the tool's to keep current.
func openForTool(ctx context.Context, cfg Config, log *slog.Logger) (*db.DB, func(), error) {
	database, closeDB, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Embedded {
		if err := migrate(ctx, database, log); err != nil {
			closeDB()
			return nil, nil, err
		}
	}
	return database, closeDB, nil
}

// runWorker runs the job workers until ctx ends, then stops them: they stop
// fetching and finish or hand back running jobs within timeout.
func runWorker(ctx context.Context, cfg Config, timeout time.Duration) error {
	log := newLogger(cfg)
	database, closeDB, err := openForTool(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeDB()
	sender, err := newSender(cfg, log)
	if err != nil {
		return err
	}
	jobCfg := cfg.Jobs
	jobCfg.Workers, jobCfg.Log, jobCfg.PublicURL = true, log, cfg.PublicURL
	if cfg.RedisURL != "" {
		invalidator, closeCache, err := workerCache(ctx, cfg.RedisURL, log)
		if err != nil {
			return err
		}
		defer closeCache()
		jobCfg.Cache = invalidator
	}
	work, err := jobs.New(database, sender, jobCfg)
	if err != nil {
		return err
	}
	if err := work.Start(ctx); err != nil {
		return fmt.Errorf("error starting job workers: %w", err)
	}
	log.Info("workers running")
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := work.Stop(stopCtx); err != nil {
		return fmt.Errorf("error stopping job workers: %w", err)
	}
	log.Info("workers stopped")
	return nil
}

// workerCache is what a worker's jobs (imports, purges) invalidate: the
// API's response cache in Redis, as serve builds it, announcing each
// invalidation to the instances that keep memory copies. Without it a
// change made by a job in a worker of its own would be served stale from
// the cache until the entries' TTL.
func workerCache(ctx context.Context, redisURL string, log *slog.Logger) (jobs.Invalidator, func(), error) {
	rdb, err := newRedisClient(redisURL)
	if err != nil {
		return nil, nil, err
	}
	coherent := startCoherence(ctx, rdb, log)
	store := cache.NewRedis(rdb, cache.RedisConfig{Timeout: 100 * time.Millisecond, Announce: coherent}, log)
	return store, func() {
		coherent.Close()
		_ = rdb.Close()
	}, nil
}
