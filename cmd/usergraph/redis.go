package main

import (
	"fmt"

	"github.com/redis/go-redis/v9"
)

// newRedisClient is the client of the Redis at url (REDIS_URL) that serve
// and workers share their stores on. Every call carries a short deadline;
// without ContextTimeoutEnabled go-redis would wait its socket timeouts
// (seconds) on a hung Redis.
func newRedisClient(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	opt.ContextTimeoutEnabled = true
	return redis.NewClient(opt), nil
}
