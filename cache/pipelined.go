package cache

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// PipelinedReads is the Redis client of the reads that nearly every
// request makes: the session check (with a cached answer read along) and
// the response cache's lookups. It sends the reads of concurrent requests
// together, in one write and one read on one connection (go-redis's
// auto-pipelining), where a connection per request costs a write and a
// read system call each, on both sides. On cached answers under 32
// concurrent connections those calls were a third of the server's CPU (see
// the README's Performance section).
//
// It changes no answer: each read is still its own command, sent to the one
// Redis after every write that was acknowledged before it, so it sees
// every revocation and invalidation that the same read on a connection of
// its own would have seen.
//
// The pipeliner runs batches on its own context, not the caller's: a read
// is bounded by this client's read and write timeouts instead, set to the
// stores' call timeout, and is not retried (a failed read is a miss, and
// the caller falls back to PostgreSQL).
type PipelinedReads struct {
	client *redis.Client
	ap     *redis.AutoPipeliner
}

// NewPipelinedReads opens a client of the Redis at url (as REDIS_URL
// names it), with connections of its own, whose reads time out after
// timeout.
func NewPipelinedReads(url string, timeout time.Duration) (*PipelinedReads, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("error parsing the Redis URL: %w", err)
	}
	opt.ReadTimeout, opt.WriteTimeout = timeout, timeout
	opt.MaxRetries = -1
	client := redis.NewClient(opt)
	ap, err := client.AutoPipeline()
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("error starting the Redis auto-pipeliner: %w", err)
	}
	return &PipelinedReads{client: client, ap: ap}, nil
}

// MGet reads keys in the next batch; ctx's deadline is not honored (see
// PipelinedReads).
func (p *PipelinedReads) MGet(ctx context.Context, keys ...string) *redis.SliceCmd {
	return p.ap.MGet(ctx, keys...)
}

// AddHook adds a hook to the batches (each one pipeline, or one command
// when it holds one): for metrics and tests.
func (p *PipelinedReads) AddHook(h redis.Hook) { p.ap.AddHook(h) }

// Close stops the pipeliner, after the reads it accepted, and closes the
// connections.
func (p *PipelinedReads) Close() error {
	err := p.ap.Close()
	if cerr := p.client.Close(); err == nil {
		err = cerr
	}
	return err
}
