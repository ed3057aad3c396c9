package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v3"

	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/db"
)

// manifest is Apollo's persisted query manifest
// (format "apollo-persisted-query-manifest", version 1).
type manifest struct {
	Format     string `json:"format"`
	Version    int    `json:"version"`
	Operations []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Type string `json:"type"`
		Body string `json:"body"`
	} `json:"operations"`
}

// persistedImportAction loads a client's manifest into PostgreSQL, where
// every instance finds it: with PERSISTED_ONLY=true, those operations are
// the only ones the API accepts.
func persistedImportAction(ctx context.Context, cmd *cli.Command) error {
	if cmd.Args().Len() != 1 {
		return fmt.Errorf("usage: usergraph persisted import MANIFEST.json")
	}
	path := cmd.Args().First()
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the manifest: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%s is not a JSON manifest: %w", path, err)
	}
	if m.Format != "apollo-persisted-query-manifest" || m.Version != 1 {
		return fmt.Errorf("%s: want format apollo-persisted-query-manifest, version 1; got %q, %d", path, m.Format, m.Version)
	}
	ops := make([]db.PersistedQuery, 0, len(m.Operations))
	for i, op := range m.Operations {
		if op.Body == "" || cache.QueryHash(op.Body) != op.ID {
			return fmt.Errorf("%s: operation %d (%s): id is not the SHA-256 of its body", path, i, op.Name)
		}
		ops = append(ops, db.PersistedQuery{Hash: op.ID, Body: op.Body, Name: op.Name})
	}
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	log := newLogger(cfg)
	database, closeDB, err := openForTool(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeDB()
	added, err := database.PersistedQueries().Import(ctx, ops)
	if err != nil {
		return err
	}
	fmt.Printf("imported %d operations (%d new) from %s\n", len(ops), added, path)
	return nil
}
