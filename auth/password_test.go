package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
)

// newTestHasher returns a Hasher with the production defaults: the tests
// check the real cost parameters, and a handful of hashes at ~20-50 ms each
// keeps the package fast.
func newTestHasher(t testing.TB, maxConcurrent int) *Hasher {
	t.Helper()
	return NewHasher(HashParams{}, Concurrency{Hashes: maxConcurrent, Waiting: -1})
}

// hashWith makes a hash with arbitrary (possibly sub-floor) parameters, as an
// older configuration would have written it.
func hashWith(t *testing.T, password string, p HashParams) string {
	t.Helper()
	encoded, err := argon2id.CreateHash(password, p.argon2id())
	if err != nil {
		t.Fatalf("CreateHash: %v", err)
	}
	return encoded
}

func TestHasherVerifiesWhatItHashed(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, 0)
	const password = "correct horse battery staple"

	encoded, err := h.Hash(password)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	ok, needsRehash, err := h.Verify(password, encoded)
	if err != nil || !ok || needsRehash {
		t.Errorf("Verify(right password) = %v, %v, %v; want true, false, nil", ok, needsRehash, err)
	}
	ok, needsRehash, err = h.Verify("correct horse battery stapler", encoded)
	if err != nil || ok || needsRehash {
		t.Errorf("Verify(wrong password) = %v, %v, %v; want false, false, nil", ok, needsRehash, err)
	}
}

func TestHasherWritesPHCStringsWithConfiguredParameters(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, 0)

	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=7168,t=5,p=1\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$`)
	var salts []string
	for range 2 {
		encoded, err := h.Hash("the same password twice")
		if err != nil {
			t.Fatalf("Hash: %v", err)
		}
		m := phc.FindStringSubmatch(encoded)
		if m == nil {
			t.Fatalf("Hash = %q, want $argon2id$v=19$m=7168,t=5,p=1$<salt>$<key>", encoded)
		}
		salt, err := base64.RawStdEncoding.DecodeString(m[1])
		if err != nil || len(salt) != 16 {
			t.Errorf("salt %q decodes to %d bytes (err %v), want 16", m[1], len(salt), err)
		}
		key, err := base64.RawStdEncoding.DecodeString(m[2])
		if err != nil || len(key) != 32 {
			t.Errorf("key %q decodes to %d bytes (err %v), want 32", m[2], len(key), err)
		}
		salts = append(salts, m[1])
	}
	if salts[0] == salts[1] {
		t.Errorf("two hashes share the salt %q; each must get a fresh random one", salts[0])
	}
}

func TestHasherAsksForRehashOfWeakerHashesOnlyAfterAMatch(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, 0)
	current := HashParams{}.WithDefaults()
	const password = "an old but good passphrase"

	tests := []struct {
		name       string
		params     HashParams
		wantRehash bool
		wrongToo   bool // also check that a wrong password asks for nothing
	}{
		{name: "fewer iterations", params: with(current, func(p *HashParams) { p.Iterations = 1 }), wantRehash: true, wrongToo: true},
		{name: "less memory", params: with(current, func(p *HashParams) { p.Memory = 6 * 1024 }), wantRehash: true},
		// Hashes made under the earlier defaults, OWASP's 19 MiB and 9 MiB
		// pairs, move to the current one at their next login.
		{name: "the first default, 19 MiB twice", params: with(current, func(p *HashParams) { p.Memory, p.Iterations = 19456, 2 }), wantRehash: true},
		{name: "the second default, 9 MiB four times", params: with(current, func(p *HashParams) { p.Memory, p.Iterations = 9216, 4 }), wantRehash: true},
		{name: "shorter key", params: with(current, func(p *HashParams) { p.KeyLength = 16 }), wantRehash: true},
		{name: "shorter salt", params: with(current, func(p *HashParams) { p.SaltLength = 8 }), wantRehash: true},
		{name: "current parameters", params: current, wantRehash: false},
		{name: "stronger parameters", params: with(current, func(p *HashParams) { p.Iterations = 6 }), wantRehash: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			encoded := hashWith(t, password, tt.params)
			ok, needsRehash, err := h.Verify(password, encoded)
			if err != nil || !ok || needsRehash != tt.wantRehash {
				t.Errorf("Verify(right password) = %v, %v, %v; want true, %v, nil", ok, needsRehash, err, tt.wantRehash)
			}
			if tt.wrongToo {
				ok, needsRehash, err := h.Verify("not the passphrase", encoded)
				if err != nil || ok || needsRehash {
					t.Errorf("Verify(wrong password) = %v, %v, %v; want false, false, nil: a rehash would store the wrong password", ok, needsRehash, err)
				}
			}
		})
	}
}

func with(p HashParams, change func(*HashParams)) HashParams {
	change(&p)
	return p
}

func TestWeakerThanComparesEveryParameter(t *testing.T) {
	t.Parallel()
	want := HashParams{Memory: 65536, Iterations: 3, Parallelism: 4, SaltLength: 16, KeyLength: 32}
	tests := []struct {
		name   string
		stored HashParams
		weaker bool
	}{
		{"equal", want, false},
		{"stronger everywhere", HashParams{Memory: 131072, Iterations: 4, Parallelism: 8, SaltLength: 32, KeyLength: 64}, false},
		{"memory lower", with(want, func(p *HashParams) { p.Memory-- }), true},
		{"iterations lower", with(want, func(p *HashParams) { p.Iterations-- }), true},
		{"parallelism lower", with(want, func(p *HashParams) { p.Parallelism-- }), true},
		{"salt shorter", with(want, func(p *HashParams) { p.SaltLength-- }), true},
		{"key shorter", with(want, func(p *HashParams) { p.KeyLength-- }), true},
		{"more memory but fewer iterations", with(want, func(p *HashParams) { p.Memory *= 2; p.Iterations-- }), true},
	}
	for _, tt := range tests {
		if got := weakerThan(tt.stored, want); got != tt.weaker {
			t.Errorf("%s: weakerThan(%+v, %+v) = %v, want %v", tt.name, tt.stored, want, got, tt.weaker)
		}
	}
}

func TestHasherRejectsMalformedHashesWithoutPanicking(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, 1)
	const password = "hunter2-but-longer"
	salt := base64.RawStdEncoding.EncodeToString([]byte("sixteen byte slt"))
	key := base64.RawStdEncoding.EncodeToString([]byte("thirty-two bytes of derived key!"))
	phc := func(version, params, salt, key string) string {
		return fmt.Sprintf("$argon2id$%s$%s$%s$%s", version, params, salt, key)
	}
	good := "m=19456,t=2,p=1"

	tests := []struct{ name, encoded string }{
		{"empty", ""},
		{"plain text", password},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i variant", strings.Replace(phc("v=19", good, salt, key), "argon2id", "argon2i", 1)},
		{"too many parts", phc("v=19", good, salt, key) + "$extra"},
		{"old version", phc("v=16", good, salt, key)},
		{"junk after version", phc("v=19x", good, salt, key)},
		{"non-numeric memory", phc("v=19", "m=lots,t=2,p=1", salt, key)},
		{"junk after parameters", phc("v=19", good+"junk", salt, key)},
		{"zero iterations", phc("v=19", "m=19456,t=0,p=1", salt, key)},
		{"zero parallelism", phc("v=19", "m=19456,t=2,p=0", salt, key)},
		{"parallelism overflow", phc("v=19", "m=19456,t=2,p=256", salt, key)},
		{"4 TiB of memory", phc("v=19", "m=4294967295,t=2,p=1", salt, key)},
		{"just above the memory ceiling", phc("v=19", fmt.Sprintf("m=%d,t=2,p=1", maxHashMemory+1), salt, key)},
		{"too many iterations", phc("v=19", fmt.Sprintf("m=19456,t=%d,p=1", maxHashIterations+1), salt, key)},
		{"salt not base64", phc("v=19", good, "!!!!", key)},
		{"padded salt", phc("v=19", good, base64.StdEncoding.EncodeToString([]byte("sixteen byte slt")), key)},
		{"empty salt", phc("v=19", good, "", key)},
		{"short salt", phc("v=19", good, base64.RawStdEncoding.EncodeToString([]byte("7 bytes")), key)},
		{"empty key", phc("v=19", good, salt, "")}, // x/crypto's argon2 panics on this one
		{"short key", phc("v=19", good, salt, base64.RawStdEncoding.EncodeToString([]byte("8 bytes!")))},
	}
	for _, tt := range tests {
		ok, needsRehash, err := h.Verify(password, tt.encoded)
		if err == nil || ok || needsRehash {
			t.Errorf("%s: Verify = %v, %v, %v; want false, false, an error", tt.name, ok, needsRehash, err)
			continue
		}
		if errors.Is(err, ErrBusy) {
			t.Errorf("%s: Verify error = %v; a malformed hash is not a capacity problem", tt.name, err)
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("%s: Verify error %q contains the password", tt.name, err)
		}
	}
	// Rejecting a hash must not leak its slot: with maxConcurrent 1, one
	// leaked slot would make every later call busy.
	if !h.tryAcquire() {
		t.Fatal("after rejecting malformed hashes, the only slot is still taken")
	}
	h.release()
}

func TestHasherRefusesWhenBusyAndNothingMayWait(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, 1) // no waiting
	encoded, err := h.Hash("a password to verify later")
	if err != nil {
		t.Fatalf("Hash while idle: %v", err)
	}

	if !h.tryAcquire() {
		t.Fatal("could not take the only slot of an idle Hasher")
	}
	// Each of these would block forever if the Hasher queued for the slot.
	if _, err := h.Hash("another password"); !errors.Is(err, ErrBusy) {
		t.Errorf("Hash while busy: err = %v, want ErrBusy", err)
	}
	if ok, needsRehash, err := h.Verify("a password to verify later", encoded); !errors.Is(err, ErrBusy) || ok || needsRehash {
		t.Errorf("Verify while busy = %v, %v, %v; want false, false, ErrBusy", ok, needsRehash, err)
	}
	if ok, err := h.VerifyDummy("a password"); !errors.Is(err, ErrBusy) || ok {
		t.Errorf("VerifyDummy while busy = %v, %v; want false, ErrBusy", ok, err)
	}
	h.release()

	if ok, _, err := h.Verify("a password to verify later", encoded); err != nil || !ok {
		t.Errorf("Verify once the slot is free = %v, %v; want true, nil", ok, err)
	}
}

// A burst waits briefly for a slot instead of failing; a wait that runs
// out, or a queue already full, is ErrBusy.
func TestHasherQueuesABurstBriefly(t *testing.T) {
	t.Parallel()
	h := NewHasher(HashParams{}, Concurrency{Hashes: 1, Waiting: 1, Wait: 10 * time.Second})
	if !h.tryAcquire() {
		t.Fatal("could not take the only slot of an idle Hasher")
	}
	done := make(chan error)
	go func() {
		_, err := h.Hash("a password that waits")
		done <- err
	}()
	for h.waiting.Load() != 1 {
		runtime.Gosched()
	}
	// The one waiting place is taken: the next caller is refused at once.
	if _, err := h.Hash("one too many"); !errors.Is(err, ErrBusy) {
		t.Errorf("Hash with the queue full: err = %v, want ErrBusy", err)
	}
	h.release()
	if err := <-done; err != nil {
		t.Errorf("Hash that waited for the slot: %v, want success", err)
	}

	short := NewHasher(HashParams{}, Concurrency{Hashes: 1, Wait: 20 * time.Millisecond})
	if !short.tryAcquire() {
		t.Fatal("could not take the only slot of an idle Hasher")
	}
	if _, err := short.Hash("waits too long"); !errors.Is(err, ErrBusy) {
		t.Errorf("Hash whose wait ran out: err = %v, want ErrBusy", err)
	}
	if n := short.waiting.Load(); n != 0 {
		t.Errorf("%d hashes still counted as waiting after giving up", n)
	}
	short.release()
}

func TestNewHasherBoundsConcurrency(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		c                  Concurrency
		hashes, maxWaiting int
	}{
		{Concurrency{}, runtime.GOMAXPROCS(0), 16 * runtime.GOMAXPROCS(0)},
		{Concurrency{Hashes: -1, Waiting: -1}, runtime.GOMAXPROCS(0), 0},
		{Concurrency{Hashes: 3, Waiting: 5}, 3, 5},
	} {
		h := NewHasher(HashParams{}, tt.c)
		if got := cap(h.sem); got != tt.hashes {
			t.Errorf("NewHasher(_, %+v) allows %d concurrent hashes, want %d", tt.c, got, tt.hashes)
		}
		if h.maxWaiting != int64(tt.maxWaiting) {
			t.Errorf("NewHasher(_, %+v) lets %d wait, want %d", tt.c, h.maxWaiting, tt.maxWaiting)
		}
	}
}

func TestVerifyDummyCostsAVerifyAndNeverMatches(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, 0)

	// Same parameters as new hashes, hence the same work as verifying a
	// freshly hashed account's password.
	got, err := decodeHash(h.dummy)
	if err != nil {
		t.Fatalf("decoding the dummy hash: %v", err)
	}
	if got != h.params {
		t.Errorf("dummy hash parameters = %+v, want the configured %+v", got, h.params)
	}
	// Even the dummy's own password does not log anybody in.
	for _, password := range []string{"dummy password for unknown accounts", "any other guess"} {
		if ok, err := h.VerifyDummy(password); ok || err != nil {
			t.Errorf("VerifyDummy(%q) = %v, %v; want false, nil", password, ok, err)
		}
	}
}

func TestHashParamsDefaultsAreAnOWASPConfiguration(t *testing.T) {
	t.Parallel()
	want := HashParams{Memory: 7168, Iterations: 5, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	if got := (HashParams{}).WithDefaults(); got != want {
		t.Errorf("HashParams{}.WithDefaults() = %+v, want %+v", got, want)
	}
	// Setting only the memory takes the iterations OWASP pairs with it.
	for memory, iterations := range map[uint32]uint32{7168: 5, 9216: 4, 12288: 3, 19456: 2, 47104: 1, 65536: 1} {
		p := HashParams{Memory: memory}.WithDefaults()
		if p.Iterations != iterations {
			t.Errorf("HashParams{Memory: %d}.WithDefaults().Iterations = %d, want %d", memory, p.Iterations, iterations)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("OWASP's m=%d, t=%d does not validate: %v", memory, iterations, err)
		}
	}
	set := HashParams{Memory: 65536, Iterations: 3, Parallelism: 4, SaltLength: 32, KeyLength: 64}
	if got := set.WithDefaults(); got != set {
		t.Errorf("WithDefaults changed explicit settings: %+v, want %+v", got, set)
	}
	if err := want.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestHashParamsValidateNamesTheSetting(t *testing.T) {
	t.Parallel()
	ok := HashParams{}.WithDefaults()
	tests := []struct {
		name   string
		params HashParams
		want   string
	}{
		{"memory below floor", with(ok, func(p *HashParams) { p.Memory = 7167 }), "PASSWORD_HASH_MEMORY: must be at least 7168 KiB"},
		{"19 MiB, one iteration", HashParams{Memory: 19456, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32},
			"PASSWORD_HASH_ITERATIONS: must be at least 2 with PASSWORD_HASH_MEMORY=19456 KiB"},
		{"12 MiB, two iterations", HashParams{Memory: 12288, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32},
			"PASSWORD_HASH_ITERATIONS: must be at least 3 with PASSWORD_HASH_MEMORY=12288 KiB"},
		{"memory above ceiling", with(ok, func(p *HashParams) { p.Memory = maxHashMemory + 1 }), "PASSWORD_HASH_MEMORY: must be at most 1048576 KiB"},
		{"default memory, four iterations", with(ok, func(p *HashParams) { p.Iterations = 4 }), "PASSWORD_HASH_ITERATIONS: must be at least 5 with PASSWORD_HASH_MEMORY=7168 KiB"},
		{"iterations above ceiling", with(ok, func(p *HashParams) { p.Iterations = maxHashIterations + 1 }), "PASSWORD_HASH_ITERATIONS: must be at most 64"},
		{"no parallelism", with(ok, func(p *HashParams) { p.Parallelism = 0 }), "PASSWORD_HASH_PARALLELISM: must be at least 1"},
		{"short salt", with(ok, func(p *HashParams) { p.SaltLength = 15 }), "PASSWORD_HASH_SALT_LENGTH: must be at least 16 bytes"},
		{"short key", with(ok, func(p *HashParams) { p.KeyLength = 31 }), "PASSWORD_HASH_KEY_LENGTH: must be at least 32 bytes"},
		{"long key", with(ok, func(p *HashParams) { p.KeyLength = maxHashLength + 1 }), "PASSWORD_HASH_KEY_LENGTH: must be at most 1024 bytes"},
	}
	for _, tt := range tests {
		err := tt.params.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}

	// An unset config (no WithDefaults) reports every setting at once, so an
	// operator fixes them in one go.
	err := HashParams{}.Validate()
	for _, setting := range []string{"PASSWORD_HASH_MEMORY", "PASSWORD_HASH_ITERATIONS", "PASSWORD_HASH_PARALLELISM", "PASSWORD_HASH_SALT_LENGTH", "PASSWORD_HASH_KEY_LENGTH"} {
		if err == nil || !strings.Contains(err.Error(), setting) {
			t.Errorf("HashParams{}.Validate() = %v, want it to name %s", err, setting)
		}
	}
}

func TestNewHasherPanicsBelowTheFloor(t *testing.T) {
	t.Parallel()
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(fmt.Sprint(r), "PASSWORD_HASH_ITERATIONS") {
			t.Errorf("NewHasher with 1 iteration: recovered %v, want a panic naming PASSWORD_HASH_ITERATIONS", r)
		}
	}()
	NewHasher(HashParams{Iterations: 1}, Concurrency{Hashes: 1})
}

// The benchmarks print what one hash costs on this machine with the default
// parameters; size maxConcurrent and the login rate limit from them.
func BenchmarkHasherHash(b *testing.B) {
	h := newTestHasher(b, 1)
	for b.Loop() {
		if _, err := h.Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHasherVerify(b *testing.B) {
	h := newTestHasher(b, 1)
	encoded, err := h.Hash("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := h.Verify("correct horse battery staple", encoded); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHasherVerifyDummy(b *testing.B) {
	h := newTestHasher(b, 1)
	for b.Loop() {
		if _, err := h.VerifyDummy("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
