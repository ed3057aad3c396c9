package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Coherence lets each instance keep copies of Redis entries in memory and
// answer from them without asking Redis, while staying exact across
// instances: once Invalidate returns, no instance answers from a copy it
// held before Invalidate began. It is the coordination a memory tier in
// front of the session check and the response cache needs (the README's
// Performance section, What remains); the tier itself is not built yet.
//
// How:
//   - Every instance subscribes to one invalidation channel and holds a
//     lease in Redis (a sorted set scored by expiry in Redis's clock),
//     renewed every Renew while its subscription is healthy.
//   - Invalidate (called after the writes it announces) starts a new epoch
//     locally, publishes, and waits until every other instance with a live
//     lease has acknowledged, or its lease has run out.
//   - An instance receiving an invalidation starts a new epoch, then
//     acknowledges. Copies are stamped with the epoch they were read in
//     (Epoch before the read) and used only while Valid: the epoch is still
//     current, the subscription has not dropped since, and the lease is
//     fresh by the instance's own clock, with a margin for clock drift.
//
// An instance that loses its subscription, or cannot renew its lease, stops
// answering from memory before the others stop waiting for it, so a
// partitioned instance costs a mutation at most one lease TTL of waiting,
// never a stale answer.
type Coherence struct {
	client *redis.Client
	id     string
	keys   coherenceKeys
	// member is this incarnation's name in the lease set: the id and a
	// count of subscriptions. A resubscribed instance may have missed
	// messages, so it leases under a new name, and an instance waiting
	// for the old name's acknowledgement stops waiting when it is gone.
	member      atomic.Pointer[string]
	incarnation int
	// dropped is set when the subscription's connection failed, until the
	// resubscription is confirmed; owned by the run loop.
	dropped bool
	cfg     CoherenceConfig

	// state is the epoch (upper bits) and whether the subscription is
	// healthy (lowest bit), changed together so that Valid is one load.
	state atomic.Uint64
	// safeUntil is the monotonic deadline (nanoseconds since start) until
	// which the lease is known to be held, minus the drift margin.
	safeUntil atomic.Int64
	start     time.Time

	mu      sync.Mutex
	waiting map[string]*acks // message id → its acknowledgements so far
	pending []ack            // acknowledgements to (re)send

	ps     *redis.PubSub
	cancel context.CancelFunc
	done   chan struct{}
}

// CoherenceConfig sets a Coherence's timing. Zero fields take defaults.
type CoherenceConfig struct {
	// Prefix starts every key and channel, as the stores' keys do.
	Prefix string
	// LeaseTTL is how long a lease lasts in Redis without renewal: the
	// longest a mutation waits for an instance that stopped answering.
	// Defaults to 3s.
	LeaseTTL time.Duration
	// Renew is how often the lease is renewed and the subscription pinged.
	// Defaults to LeaseTTL / 3.
	Renew time.Duration
	// Logger receives failures to renew, publish or acknowledge.
	Logger *slog.Logger
}

func (c CoherenceConfig) withDefaults() CoherenceConfig {
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 3 * time.Second
	}
	if c.Renew <= 0 {
		c.Renew = c.LeaseTTL / 3
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

type coherenceKeys struct{ leases, channel, acks string }

// ackChannel is where the instance id hears the acknowledgements of its
// invalidations.
func ackChannel(prefix, id string) string { return prefix + "coherence:ack:" + id }

// ack is an acknowledgement to send: the message id and the acknowledging
// lease name, on the invalidating instance's channel.
type ack struct{ channel, payload string }

// randomID names an instance or a message.
func randomID() string {
	var raw [8]byte
	_, _ = rand.Read(raw[:])
	return hex.EncodeToString(raw[:])
}

// acks are the lease names that acknowledged one invalidation, guarded by
// Coherence.mu; notify has room for one notice.
type acks struct {
	from   map[string]bool
	notify chan struct{}
}

// driftMargin is the share of the lease an instance gives up to clock
// drift and scheduling: it stops trusting its lease this long before Redis
// lets it expire.
const driftMargin = 4 // LeaseTTL / driftMargin

// NewCoherence starts the subscription and the lease of a new instance on
// client, and returns once both are in place (or ctx ends). Close stops
// them.
func NewCoherence(ctx context.Context, client *redis.Client, cfg CoherenceConfig) (*Coherence, error) {
	cfg = cfg.withDefaults()
	id := randomID()
	c := &Coherence{
		client: client, id: id, cfg: cfg, start: time.Now(),
		keys: coherenceKeys{
			leases:  cfg.Prefix + "coherence:leases",
			channel: cfg.Prefix + "coherence:invalidate",
			acks:    ackChannel(cfg.Prefix, id),
		},
		waiting: map[string]*acks{},
		done:    make(chan struct{}),
	}
	c.ps = client.Subscribe(ctx, c.keys.channel, c.keys.acks)
	// Wait for both confirmations before leasing: an instance must hear
	// every invalidation published after its lease is visible.
	for confirmed := 0; confirmed < 2; {
		msg, err := c.ps.Receive(ctx)
		if err != nil {
			_ = c.ps.Close()
			return nil, fmt.Errorf("error subscribing to %s: %w", c.keys.channel, err)
		}
		if _, ok := msg.(*redis.Subscription); ok {
			confirmed++
		}
	}
	c.state.Store(1<<1 | 1) // epoch 1, healthy
	c.newIncarnation()
	if err := c.renew(ctx, ""); err != nil {
		_ = c.ps.Close()
		return nil, fmt.Errorf("error taking a lease: %w", err)
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	go c.run(loopCtx)
	return c, nil
}

// ID names the instance.
func (c *Coherence) ID() string { return c.id }

// newIncarnation names the lease of a new subscription and returns the
// previous name ("" for none).
func (c *Coherence) newIncarnation() (previous string) {
	if m := c.member.Load(); m != nil {
		previous = *m
	}
	c.incarnation++
	m := c.id + "/" + fmt.Sprint(c.incarnation)
	c.member.Store(&m)
	return previous
}

// Epoch is the epoch to stamp a copy with, taken before the read that fills
// it, and whether copies may be used at all right now.
func (c *Coherence) Epoch() (epoch uint64, ok bool) {
	s := c.state.Load()
	return s >> 1, s&1 == 1 && c.leaseFresh()
}

// Valid reports whether a copy read in epoch may still answer.
func (c *Coherence) Valid(epoch uint64) bool {
	s := c.state.Load()
	return s == epoch<<1|1 && c.leaseFresh()
}

func (c *Coherence) leaseFresh() bool {
	return int64(time.Since(c.start)) < c.safeUntil.Load()
}

// newEpoch starts a new epoch, keeping the subscription's health.
func (c *Coherence) newEpoch() { c.update(func(healthy bool) bool { return healthy }) }

// bump starts a new epoch with the subscription healthy or not.
func (c *Coherence) bump(healthy bool) { c.update(func(bool) bool { return healthy }) }

func (c *Coherence) update(health func(was bool) bool) {
	for {
		s := c.state.Load()
		next := (s>>1 + 1) << 1
		if health(s&1 == 1) {
			next |= 1
		}
		if c.state.CompareAndSwap(s, next) {
			return
		}
	}
}

// leaseScript renews a lease scored by expiry in Redis's own clock, prunes
// the expired ones, publishes an invalidation if given one, and returns the
// live leases (read after the publication, in one round trip). The set has
// no TTL, so that maxmemory-policy volatile-ttl never evicts it: a
// publisher that found no leases would not wait for anybody.
var leaseScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[3] ~= '' then
  redis.call('ZREM', KEYS[1], ARGV[3])
end
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
end
if ARGV[5] ~= '' then
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
`)

// leases runs leaseScript: it renews member (when set) in place of
// previous (when set), publishes payload (when set) on the invalidation
// channel, and returns the live leases.
func (c *Coherence) leases(ctx context.Context, member, previous, payload string) ([]string, error) {
	return leaseScript.Run(ctx, c.client, []string{c.keys.leases},
		member, c.cfg.LeaseTTL.Milliseconds(), previous, c.keys.channel, payload).StringSlice()
}

// renew extends the lease (replacing previous, a former incarnation's, if
// set). The safe deadline counts from before the call: Redis set the expiry
// after that moment.
//
// A lease that may have lapsed is renewed into a new epoch: while it was out, an
// instance could invalidate without waiting for this one, and its message
// may not have been handled yet, so copies read before must not answer
// again once the lease is fresh.
func (c *Coherence) renew(ctx context.Context, previous string) error {
	sent := time.Since(c.start)
	if _, err := c.leases(ctx, *c.member.Load(), previous, ""); err != nil {
		return err
	}
	// The lease may have lapsed in Redis if this renewal took effect
	// after the previous one's safe deadline.
	if int64(time.Since(c.start)) >= c.safeUntil.Load() {
		c.newEpoch()
	}
	c.safeUntil.Store(int64(sent + c.cfg.LeaseTTL - c.cfg.LeaseTTL/driftMargin))
	return nil
}

// leased lists the other instances whose lease is live in Redis's clock,
// after publishing payload on the invalidation channel if it is not "".
func (c *Coherence) leased(ctx context.Context, payload string) (map[string]bool, error) {
	members, err := c.leases(ctx, "", "", payload)
	if err != nil {
		return nil, err
	}
	live := make(map[string]bool, len(members))
	for _, m := range members {
		if id, _, _ := strings.Cut(m, "/"); id != c.id {
			live[m] = true
		}
	}
	return live, nil
}

// CopyLifetime bounds how long a copy answers after the read that filled
// it, whatever the invalidations. It is the safety net of exactness: a
// write whose invalidation no instance confirmed waits it out (see
// AwaitInvalidation), after which no copy read before the write is used
// anywhere. It also bounds how long a copy outlives its entry's expiry in
// Redis. Every instance must use the same value.
const CopyLifetime = time.Second

// Announcer announces an invalidation to every instance: a Coherence, or a
// stand-in for one that is not started yet.
type Announcer interface {
	// Invalidate returns nil once every instance dropped its copies.
	Invalidate(ctx context.Context) error
}

// AwaitInvalidation returns once no instance answers from a copy read
// before wroteAt, the moment before a write that copies must not outlive:
// when every instance confirmed a's announcement, or else at wroteAt +
// CopyLifetime. The error says the announcement was not confirmed (the
// wait is over anyway); the caller logs it.
func AwaitInvalidation(ctx context.Context, a Announcer, wroteAt time.Time) error {
	ctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), wroteAt.Add(CopyLifetime))
	defer cancel()
	err := a.Invalidate(ctx)
	if err != nil {
		<-ctx.Done()
	}
	return err
}

// ErrInvalidationUnconfirmed is returned by Invalidate when ctx ended before
// every leased instance confirmed: one may still answer from an old copy
// until its lease runs out, or at most CopyLifetime after its read.
var ErrInvalidationUnconfirmed = errors.New("invalidation not confirmed by every instance")

// Invalidate makes every instance drop the copies it holds: locally at
// once, elsewhere before it returns nil. Call it after the writes to Redis
// that the copies must not outlive.
func (c *Coherence) Invalidate(ctx context.Context) error {
	c.newEpoch()
	msgID := randomID()
	got := &acks{from: map[string]bool{}, notify: make(chan struct{}, 1)}
	c.mu.Lock()
	c.waiting[msgID] = got
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiting, msgID)
		c.mu.Unlock()
	}()

	// Publish, then read the leases, in one script: an instance leased
	// after the read subscribed before leasing, so it either hears this
	// message or reads Redis after the writes it announces. The script is
	// retried until ctx ends: until it succeeds, any instance may hold
	// copies.
	recheck := time.NewTicker(c.cfg.Renew / 2)
	defer recheck.Stop()
	var live map[string]bool
	for live == nil {
		var err error
		// A failed attempt may have published: a second message only
		// makes its receivers drop their copies and acknowledge again.
		if live, err = c.leased(ctx, c.id+"|"+msgID); err != nil {
			c.cfg.Logger.Warn("invalidation not announced yet; retrying", "err", err)
			select {
			case <-recheck.C:
			case <-ctx.Done():
				return fmt.Errorf("%w: %w", ErrInvalidationUnconfirmed, err)
			}
		}
	}
	for len(live) > 0 {
		select {
		case <-got.notify:
			c.mu.Lock()
			for from := range got.from {
				delete(live, from)
			}
			c.mu.Unlock()
		case <-recheck.C:
			// An instance that does not answer is waited for until its
			// lease runs out in Redis.
			still, err := c.leased(ctx, "")
			if err != nil {
				continue
			}
			for id := range live {
				if !still[id] {
					delete(live, id)
				}
			}
		case <-ctx.Done():
			return fmt.Errorf("%w: %d not confirmed", ErrInvalidationUnconfirmed, len(live))
		}
	}
	return nil
}

// run receives invalidations and acknowledgements, pings the subscription
// and renews the lease, until Close.
func (c *Coherence) run(ctx context.Context) {
	defer close(c.done)
	lastHeard := time.Now()
	lastRenew := time.Now()
	pinged := false
	for ctx.Err() == nil {
		msg, err := c.ps.ReceiveTimeout(ctx, c.cfg.Renew/2)
		switch {
		case err == nil:
			lastHeard, pinged = time.Now(), false
			c.handle(ctx, msg)
		case isTimeout(err):
			if !pinged {
				pinged = c.ps.Ping(ctx) == nil
			}
		default:
			if ctx.Err() != nil {
				return
			}
			// The connection dropped: messages may have been lost. go-redis
			// reconnects and resubscribes; until the confirmations arrive
			// no copy may answer.
			if c.state.Load()&1 == 1 {
				c.cfg.Logger.Warn("invalidation subscription lost; answering from Redis until it is back", "err", err)
			}
			c.dropped = true
			c.bump(false)
			time.Sleep(min(c.cfg.Renew, 100*time.Millisecond))
		}
		if time.Since(lastHeard) > c.cfg.Renew*2 && c.state.Load()&1 == 1 {
			c.cfg.Logger.Warn("invalidation subscription silent; answering from Redis until it answers")
			c.bump(false)
		}
		c.resendAcks(ctx)
		if time.Since(lastRenew) >= c.cfg.Renew && c.state.Load()&1 == 1 {
			if err := c.renew(ctx, ""); err != nil {
				c.cfg.Logger.Warn("lease not renewed", "err", err)
			}
			lastRenew = time.Now()
		}
	}
}

func (c *Coherence) handle(ctx context.Context, msg any) {
	if m, ok := msg.(*redis.Subscription); ok {
		// Resubscribed after a drop: healthy again once both channels
		// are, under a new lease name, since messages may have been lost.
		if m.Kind == "subscribe" && m.Count == 2 && c.dropped {
			c.dropped = false
			previous := c.newIncarnation()
			c.bump(true)
			if err := c.renew(ctx, previous); err != nil {
				c.cfg.Logger.Warn("lease not renewed", "err", err)
			}
		}
		return
	}
	// Heard on a connection that did not drop: nothing was lost on it, so
	// a silence is over.
	if !c.dropped && c.state.Load()&1 == 0 {
		c.bump(true)
	}
	switch m := msg.(type) {
	case *redis.Message:
		switch m.Channel {
		case c.keys.channel:
			from, msgID, ok := strings.Cut(m.Payload, "|")
			if !ok || from == c.id {
				return
			}
			c.newEpoch()
			c.mu.Lock()
			c.pending = append(c.pending, ack{channel: ackChannel(c.cfg.Prefix, from), payload: msgID + "|" + *c.member.Load()})
			c.mu.Unlock()
			c.resendAcks(ctx)
		case c.keys.acks:
			msgID, from, ok := strings.Cut(m.Payload, "|")
			if !ok {
				return
			}
			c.mu.Lock()
			if got := c.waiting[msgID]; got != nil {
				got.from[from] = true
				select {
				case got.notify <- struct{}{}:
				default: // a notice is already pending
				}
			}
			c.mu.Unlock()
		}
	}
}

// resendAcks publishes the acknowledgements not sent yet. One that fails is
// kept for the next turn of the loop; meanwhile the invalidating instance
// waits, and this one's copies are already dropped.
func (c *Coherence) resendAcks(ctx context.Context) {
	c.mu.Lock()
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for i, a := range pending {
		if err := c.client.Publish(ctx, a.channel, a.payload).Err(); err != nil {
			c.mu.Lock()
			c.pending = append(pending[i:], c.pending...)
			c.mu.Unlock()
			return
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Close stops the subscription and gives up the lease, so that no mutation
// waits for this instance.
func (c *Coherence) Close() error {
	c.cancel()
	err := c.ps.Close()
	<-c.done
	c.bump(false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if zerr := c.client.ZRem(ctx, c.keys.leases, *c.member.Load()).Err(); zerr != nil && err == nil {
		err = zerr
	}
	return err
}
