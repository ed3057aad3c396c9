package jobs

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/riverqueue/river"

	"github.com/usergraph/usergraph/db"
)

// MaintenanceArgs runs the periodic upkeep. River's elected leader inserts
// it on schedule, so it runs once across all instances however many there
// are; it is also unique per interval in case two leaders overlap.
type MaintenanceArgs struct{}

// Kind names the job.
func (MaintenanceArgs) Kind() string { return "maintenance" }

// InsertOpts puts maintenance on its own queue.
func (MaintenanceArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, MaxAttempts: 3,
		UniqueOpts: river.UniqueOpts{ByPeriod: 5 * time.Minute}}
}

// MaintenanceReport is the job's recorded output.
type MaintenanceReport struct {
	DroppedPartitions []string `json:"dropped_partitions,omitempty"`
	PurgedTokens      int64    `json:"purged_tokens"`
	PurgedSessions    int64    `json:"purged_sessions"`
	PurgedUsers       int      `json:"purged_users"`
	ExpiredExports    int      `json:"expired_exports"`
}

// sessionHistory is how long ended sessions are kept to recognise devices.
const sessionHistory = 30 * 24 * time.Hour

type maintenanceWorker struct {
	river.WorkerDefaults[MaintenanceArgs]
	db  *db.DB
	cfg Config
}

func (w *maintenanceWorker) Work(ctx context.Context, job *river.Job[MaintenanceArgs]) error {
	rep, err := Maintain(ctx, w.db, w.cfg, time.Now())
	if err != nil {
		return err
	}
	return river.RecordOutput(ctx, rep)
}

// Maintain runs every upkeep step once: audit partitions three months
// ahead, audit months past retention dropped, expired tokens and ended
// sessions purged, self-deleted accounts past their grace period
// hard-deleted, expired export files removed.
func Maintain(ctx context.Context, d *db.DB, cfg Config, now time.Time) (MaintenanceReport, error) {
	cfg = cfg.withDefaults()
	var rep MaintenanceReport
	m := d.Maintenance()
	if err := m.EnsureAuditPartitions(ctx, 3); err != nil {
		return rep, err
	}
	if cfg.AuditRetention > 0 {
		dropped, err := m.DropAuditPartitions(ctx, now.Add(-cfg.AuditRetention))
		if err != nil {
			return rep, err
		}
		rep.DroppedPartitions = dropped
	}
	var err error
	if rep.PurgedTokens, err = m.PurgeTokens(ctx, now); err != nil {
		return rep, err
	}
	if rep.PurgedSessions, err = m.PurgeSessions(ctx, now.Add(-sessionHistory)); err != nil {
		return rep, err
	}
	for {
		ids, err := m.PurgeDeletedUsers(ctx, now, 500)
		if err != nil {
			return rep, err
		}
		rep.PurgedUsers += len(ids)
		tags := []string{"users"}
		for _, id := range ids {
			tags = append(tags, "User:"+id.String())
		}
		invalidate(ctx, cfg.Cache, tags...)
		if len(ids) < 500 {
			break
		}
	}
	for {
		expired, err := d.Exports().Expired(ctx, now, 500)
		if err != nil {
			return rep, err
		}
		for _, e := range expired {
			for _, name := range []string{exportFile(cfg.ExportDir, &e), exportFile(cfg.ExportDir, &e) + partial} {
				if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return rep, err
				}
			}
			if err := d.Exports().Delete(ctx, e.ID); err != nil {
				return rep, err
			}
		}
		rep.ExpiredExports += len(expired)
		if len(expired) < 500 {
			break
		}
	}
	return rep, nil
}

// partial marks an export file still being written.
const partial = ".partial"

// exportFile is where an export's finished file lives.
func exportFile(dir string, e *db.Export) string {
	ext := map[string]string{"CSV": ".csv", "JSONL": ".jsonl", "JSON": ".json"}[e.Format]
	return filepath.Join(dir, e.ID.String()+ext)
}
