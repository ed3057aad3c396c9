package auth

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/alexedwards/argon2id"
)

// ErrBusy is returned by the Hasher when as many hashes as it allows are
// already running and its short queue is full or did not move in time.
// Callers answer RATE_LIMITED: queueing without bound behind a login flood
// would only turn it into timeouts for everybody.
var ErrBusy = errors.New("too many password hashes in progress")

// Concurrency bounds the Hasher's work. Each hash holds its memory cost
// (7 MiB by default) while it runs and keeps one core busy (parallelism
// 1), so running more hashes than cores adds memory, not throughput; a
// burst waits briefly instead.
type Concurrency struct {
	// Hashes is how many run at once; 0 (or less) means GOMAXPROCS.
	Hashes int
	// Waiting is how many more may wait for a slot; 0 means 16 × Hashes,
	// less than 0 none.
	Waiting int
	// Wait is the longest a hash waits for a slot before ErrBusy; 0 means
	// one second.
	Wait time.Duration
}

func (c Concurrency) withDefaults() Concurrency {
	if c.Hashes <= 0 {
		c.Hashes = runtime.GOMAXPROCS(0)
	}
	switch {
	case c.Waiting == 0:
		c.Waiting = 16 * c.Hashes
	case c.Waiting < 0:
		c.Waiting = 0
	}
	if c.Wait <= 0 {
		c.Wait = time.Second
	}
	return c
}

// The OWASP Password Storage Cheat Sheet's argon2id configurations, which it
// says "provide an equal level of defense, and the only difference is a
// trade off between CPU and RAM usage": the fewest iterations for a memory
// cost, most memory first. Below the last there is none.
var owaspPairs = []struct{ memory, iterations uint32 }{
	{46 * 1024, 1},
	{19 * 1024, 2},
	{12 * 1024, 3},
	{9 * 1024, 4},
	{7 * 1024, 5},
}

// minIterations is the fewest iterations OWASP allows with memory KiB, or 0
// for memory below every configuration.
func minIterations(memory uint32) uint32 {
	for _, p := range owaspPairs {
		if memory >= p.memory {
			return p.iterations
		}
	}
	return 0
}

// The default memory cost is OWASP's 7 MiB pair (t=5), the last of its
// equivalent configurations: the same defense and about the same CPU per
// hash as its 19 MiB one (t=2) or its 9 MiB one (t=4), for the least RAM,
// which is what bounds a server under a burst of logins, each hash
// allocating it afresh and leaving it to the garbage collector. Against the
// 9 MiB pair it took the login workload's peak RSS from 120-122 MiB to 109
// (make bench BENCH_FLAGS="-only Q1,M2 -users 100000", two runs each). The
// salt and key sizes are those below which a hash is no longer
// argued to be safe. HashParams.Validate refuses anything weaker.
const (
	// DefaultHashMemory is the default memory cost in KiB.
	DefaultHashMemory  = 7 * 1024
	minHashMemory      = 7 * 1024
	minHashParallelism = 1
	minHashSaltLength  = 16
	minHashKeyLength   = 32
)

// Ceilings on the work one hash may take. Verify reads the parameters from
// the stored hash, which is data: a corrupt or hostile row must not make one
// login allocate gigabytes or spin for minutes. Validate applies the same
// ceilings so that the Hasher never writes a hash it would refuse to verify.
const (
	maxHashMemory     = 1024 * 1024 // KiB, 1 GiB
	maxHashIterations = 64
	maxHashLength     = 1024 // bytes, for salt and key
)

// Below these a stored hash was not written by any sane configuration, and
// x/crypto's argon2 panics on an empty key, so Verify refuses them outright
// instead of checking a password against them. Hashes above them but below
// the configured parameters verify and report needsRehash.
const (
	minStoredSaltLength = 8 // RFC 9106's minimum
	minStoredKeyLength  = 16
)

// HashParams are the argon2id cost parameters of new password hashes. The
// zero value of each field means its default; WithDefaults fills them in.
// Raising any of them later is safe: hashes made with weaker parameters still
// verify, and Verify reports that they need re-hashing.
type HashParams struct {
	// Memory is the memory cost in KiB, set by PASSWORD_HASH_MEMORY. It is
	// what makes guessing expensive on GPUs, and it is allocated per hash in
	// progress, so the server needs Memory × maxConcurrent of headroom.
	// Defaults to, and must be at least, 7168 (7 MiB).
	Memory uint32
	// Iterations is the number of passes over the memory, set by
	// PASSWORD_HASH_ITERATIONS. Defaults to, and must be at least, what
	// OWASP pairs with Memory: 5 at 7 MiB, 4 at 9 MiB, 2 at 19 MiB (owaspPairs).
	Iterations uint32
	// Parallelism is the number of lanes computed concurrently, set by
	// PASSWORD_HASH_PARALLELISM. Changing it changes every hash, so it is
	// part of the stored parameters. Defaults to 1.
	Parallelism uint8
	// SaltLength is the random salt's size in bytes, set by
	// PASSWORD_HASH_SALT_LENGTH. Defaults to 16.
	SaltLength uint32
	// KeyLength is the derived key's size in bytes, set by
	// PASSWORD_HASH_KEY_LENGTH. Defaults to 32.
	KeyLength uint32
}

// WithDefaults returns a copy of p with every zero field set to its default.
func (p HashParams) WithDefaults() HashParams {
	if p.Memory == 0 {
		p.Memory = DefaultHashMemory
	}
	if p.Iterations == 0 {
		p.Iterations = minIterations(p.Memory)
	}
	if p.Parallelism == 0 {
		p.Parallelism = minHashParallelism
	}
	if p.SaltLength == 0 {
		p.SaltLength = minHashSaltLength
	}
	if p.KeyLength == 0 {
		p.KeyLength = minHashKeyLength
	}
	return p
}

// Validate reports every setting of p below the OWASP minimum or above the
// ceiling Verify accepts, each error naming the environment variable an
// operator sets. It checks p as given: call it on p.WithDefaults() to allow
// unset fields.
func (p HashParams) Validate() error {
	var errs []error
	check := func(setting string, got, lowest, highest uint32, unit string) {
		if got < lowest {
			errs = append(errs, fmt.Errorf("%s: must be at least %d%s, got %d", setting, lowest, unit, got))
		} else if got > highest {
			errs = append(errs, fmt.Errorf("%s: must be at most %d%s, got %d", setting, highest, unit, got))
		}
	}
	check("PASSWORD_HASH_MEMORY", p.Memory, minHashMemory, maxHashMemory, " KiB")
	if least := minIterations(p.Memory); least > 0 && p.Iterations < least {
		errs = append(errs, fmt.Errorf("PASSWORD_HASH_ITERATIONS: must be at least %d with PASSWORD_HASH_MEMORY=%d KiB (OWASP's configurations), got %d",
			least, p.Memory, p.Iterations))
	} else {
		check("PASSWORD_HASH_ITERATIONS", p.Iterations, 1, maxHashIterations, "")
	}
	check("PASSWORD_HASH_PARALLELISM", uint32(p.Parallelism), minHashParallelism, 255, "")
	check("PASSWORD_HASH_SALT_LENGTH", p.SaltLength, minHashSaltLength, maxHashLength, " bytes")
	check("PASSWORD_HASH_KEY_LENGTH", p.KeyLength, minHashKeyLength, maxHashLength, " bytes")
	return errors.Join(errs...)
}

func (p HashParams) argon2id() *argon2id.Params {
	return &argon2id.Params{
		Memory:      p.Memory,
		Iterations:  p.Iterations,
		Parallelism: p.Parallelism,
		SaltLength:  p.SaltLength,
		KeyLength:   p.KeyLength,
	}
}

// Hasher hashes and verifies passwords with argon2id, producing PHC strings
// ("$argon2id$v=19$m=7168,t=5,p=1$salt$key"). Each hash takes tens of
// milliseconds of CPU and Memory KiB of RAM on purpose, so the Hasher bounds
// how many run at once and refuses the rest with ErrBusy. It is safe for
// concurrent use. Passwords never appear in its errors.
type Hasher struct {
	params HashParams
	// sem holds one token per hash in progress; a full channel means busy.
	sem chan struct{}
	// waiting counts the hashes queued for a slot, at most maxWaiting.
	waiting    atomic.Int64
	maxWaiting int64
	wait       time.Duration
	// dummy is a hash with the configured parameters that VerifyDummy
	// checks against, so that it costs what Verify costs.
	dummy string
}

// NewHasher returns a Hasher making hashes with p.WithDefaults(), bounded by
// c (zero fields take the defaults). It computes one hash for VerifyDummy,
// so it takes as long as a Hash.
//
// NewHasher panics when p.WithDefaults() fails Validate: the parameters come
// from configuration validated at start-up, so an invalid value here is a
// programming error, and hashing below the floor instead would be silent.
func NewHasher(p HashParams, c Concurrency) *Hasher {
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		panic(fmt.Sprintf("auth.NewHasher: invalid hash parameters: %v", err))
	}
	c = c.withDefaults()
	// The dummy's password is irrelevant: nobody can log in against it, and
	// its random salt makes it unguessable anyway.
	dummy, err := argon2id.CreateHash("dummy password for unknown accounts", p.argon2id())
	if err != nil {
		// crypto/rand does not fail on supported platforms since Go 1.24.
		panic(fmt.Sprintf("auth.NewHasher: error hashing the dummy password: %v", err))
	}
	return &Hasher{params: p, sem: make(chan struct{}, c.Hashes), maxWaiting: int64(c.Waiting), wait: c.Wait, dummy: dummy}
}

// Hash returns the PHC string of password with a fresh random salt, or
// ErrBusy when no slot frees up in time (see Concurrency).
func (h *Hasher) Hash(password string) (string, error) {
	if !h.acquire() {
		return "", ErrBusy
	}
	defer h.release()
	encoded, err := argon2id.CreateHash(password, h.params.argon2id())
	if err != nil {
		return "", fmt.Errorf("error hashing password: %w", err)
	}
	return encoded, nil
}

// Verify reports whether password matches encoded, a PHC string made by
// Hash. needsRehash is true when the password matches and the stored
// parameters are weaker than the configured ones (memory, iterations,
// parallelism, salt or key length lower): the caller then stores a fresh Hash
// of the password it just verified. It is never true for a wrong password,
// so a caller cannot overwrite a hash with an attacker's guess. A malformed
// or implausibly expensive stored hash is an error; ErrBusy as for Hash.
func (h *Hasher) Verify(password, encoded string) (ok, needsRehash bool, err error) {
	stored, err := decodeHash(encoded)
	if err != nil {
		return false, false, err
	}
	if !h.acquire() {
		return false, false, ErrBusy
	}
	defer h.release()
	ok, _, err = argon2id.CheckHash(password, encoded)
	if err != nil {
		return false, false, fmt.Errorf("error verifying password: %w", err)
	}
	return ok, ok && weakerThan(stored, h.params), nil
}

// VerifyDummy does the work of a Verify against a hash with the configured
// parameters and always reports false. Login calls it when the account does
// not exist, so that the answer takes as long as a wrong password for a real
// account and response times do not reveal which accounts exist. ErrBusy as
// for Hash, for the same reason: a flood of unknown names costs the same.
func (h *Hasher) VerifyDummy(password string) (bool, error) {
	if !h.acquire() {
		return false, ErrBusy
	}
	defer h.release()
	if _, _, err := argon2id.CheckHash(password, h.dummy); err != nil {
		return false, fmt.Errorf("error verifying dummy password: %w", err)
	}
	return false, nil
}

// tryAcquire takes a slot without waiting; tests hold one to make the
// Hasher busy deterministically.
func (h *Hasher) tryAcquire() bool {
	select {
	case h.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

// acquire takes a slot, waiting for one at most h.wait and only while fewer
// than maxWaiting others wait.
func (h *Hasher) acquire() bool {
	if h.tryAcquire() {
		return true
	}
	if h.waiting.Add(1) > h.maxWaiting {
		h.waiting.Add(-1)
		return false
	}
	defer h.waiting.Add(-1)
	t := time.NewTimer(h.wait)
	defer t.Stop()
	select {
	case h.sem <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

func (h *Hasher) release() { <-h.sem }

// decodeHash parses encoded and refuses what argon2 would panic on or take
// unbounded resources for. The errors describe the hash's shape only: the
// hash itself stays out of logs.
func decodeHash(encoded string) (HashParams, error) {
	p, _, _, err := argon2id.DecodeHash(encoded)
	if err != nil {
		return HashParams{}, fmt.Errorf("error decoding password hash: %w", err)
	}
	// DecodeHash ignores anything after the numbers it scans ("p=1junk"); a
	// hash not in the exact form Hash writes is corrupt, whatever its prefix.
	// It has checked there are six '$'-separated parts.
	parts := strings.Split(encoded, "$")
	if parts[2] != "v=19" || parts[3] != fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Iterations, p.Parallelism) {
		return HashParams{}, errors.New("error decoding password hash: malformed version or parameters")
	}
	switch {
	case p.Iterations < 1 || p.Iterations > maxHashIterations:
		return HashParams{}, fmt.Errorf("error decoding password hash: iterations %d outside [1, %d]", p.Iterations, maxHashIterations)
	case p.Parallelism < 1:
		return HashParams{}, errors.New("error decoding password hash: parallelism 0")
	case p.Memory > maxHashMemory:
		return HashParams{}, fmt.Errorf("error decoding password hash: memory %d KiB above %d", p.Memory, maxHashMemory)
	case p.SaltLength < minStoredSaltLength || p.SaltLength > maxHashLength:
		return HashParams{}, fmt.Errorf("error decoding password hash: salt of %d bytes outside [%d, %d]", p.SaltLength, minStoredSaltLength, maxHashLength)
	case p.KeyLength < minStoredKeyLength || p.KeyLength > maxHashLength:
		return HashParams{}, fmt.Errorf("error decoding password hash: key of %d bytes outside [%d, %d]", p.KeyLength, minStoredKeyLength, maxHashLength)
	}
	return HashParams{
		Memory:      p.Memory,
		Iterations:  p.Iterations,
		Parallelism: p.Parallelism,
		SaltLength:  p.SaltLength,
		KeyLength:   p.KeyLength,
	}, nil
}

// weakerThan reports whether a hash made with stored falls short of want in
// any parameter. A hash stronger in one and weaker in another counts as
// weaker: the configured parameters are the ones every hash should meet.
func weakerThan(stored, want HashParams) bool {
	return stored.Memory < want.Memory ||
		stored.Iterations < want.Iterations ||
		stored.Parallelism < want.Parallelism ||
		stored.SaltLength < want.SaltLength ||
		stored.KeyLength < want.KeyLength
}
