package db

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// PersistedQuery is one operation of a client's manifest, by the SHA-256
// of its text.
type PersistedQuery struct {
	Hash, Body, Name string
}

// PersistedQueries stores manifest operations.
type PersistedQueries struct{ d *DB }

// PersistedQueries returns the manifest store.
func (d *DB) PersistedQueries() PersistedQueries { return PersistedQueries{d: d} }

// Operation returns the text of the operation with this hash.
func (p PersistedQueries) Operation(ctx context.Context, hash string) (string, bool, error) {
	var body string
	err := p.d.Pool.QueryRow(ctx, "SELECT body FROM persisted_queries WHERE hash = $1", hash).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("error reading persisted query: %w", err)
	}
	return body, true, nil
}

// Import adds operations (a hash already present keeps its text: the hash
// is of the text, so it is the same). It returns how many were new.
func (p PersistedQueries) Import(ctx context.Context, ops []PersistedQuery) (int, error) {
	var added int
	err := pgx.BeginFunc(ctx, p.d.Pool, func(tx pgx.Tx) error {
		for _, op := range ops {
			tag, err := tx.Exec(ctx, `INSERT INTO persisted_queries (hash, body, name) VALUES ($1, $2, $3)
				ON CONFLICT (hash) DO NOTHING`, op.Hash, op.Body, op.Name)
			if err != nil {
				return fmt.Errorf("error importing persisted query %s: %w", op.Name, err)
			}
			added += int(tag.RowsAffected())
		}
		return nil
	})
	return added, err
}
