package stickiness

import (
	"errors"
	"fmt"
	"time"

	"github.com/fame-go/fame/security/aft"
)

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("stickiness: invalid config")

// ParseLevel parses a level name; "" means the default, signed-optional.
func ParseLevel(s string) (aft.Level, error) {
	switch aft.Level(s) {
	case "":
		return aft.LevelSignedOptional, nil
	case aft.LevelStrict, aft.LevelSignedOptional, aft.LevelSIDOnly:
		return aft.Level(s), nil
	}
	return "", fmt.Errorf("%w: unknown security level %q (want %q, %q or %q)",
		ErrInvalidConfig, s, aft.LevelStrict, aft.LevelSignedOptional, aft.LevelSIDOnly)
}

// Defaults. DefaultIdleTTL is deliberately far longer than the reference's
// default_ttl_sec (30 s): a binding here is the sentinel's own record of where
// a client's channel keys live, and it slides on every use, so it only has to
// outlast the longest pause a client may take between two calls.
const (
	DefaultIdleTTL       = time.Hour
	DefaultMaxTTL        = 7200 * time.Second
	DefaultCacheMax      = 100_000
	DefaultAdvertisedTTL = 30 * time.Second
)

// Config configures a Table. The zero value of a duration or of CacheMax
// means "use the default"; see DefaultConfig.
type Config struct {
	// Enabled turns stickiness on. A disabled Table never finds a binding and
	// ignores Bind/BindChannel/LearnAFT, so callers need no special case.
	Enabled bool
	// SecurityLevel decides which AFTs LearnAFT accepts.
	SecurityLevel aft.Level
	// DefaultTTL is the idle lifetime of a binding: every Lookup hit pushes
	// its expiry to now+TTL (sliding), so an active session never expires.
	// Bind with ttl <= 0 uses it; LearnAFT uses max(DefaultTTL, token lifetime).
	DefaultTTL time.Duration
	// MaxTTL caps every binding's TTL, including ones learned from AFTs
	// (the reference does not enforce max_ttl_sec on received tokens).
	MaxTTL time.Duration
	// CacheMax bounds the number of session bindings, and separately the
	// number of channel bindings; the least recently used one is evicted.
	// From 4096 up the table is split into 32 shards that each hold
	// CacheMax/32 and evict on their own, so eviction may begin slightly
	// (about 0.2% at 1M) before the total reaches CacheMax.
	CacheMax int
	// AdvertisedTTL is the ttlSec that Negotiate puts in its answer (the
	// reference's default_ttl_sec). Reference replicas ignore it.
	AdvertisedTTL time.Duration
}

// DefaultConfig is what the sentinel runs with when the config has no
// stickiness block: enabled, signed-optional, 1 h sliding idle TTL, 2 h cap,
// 100000 bindings.
func DefaultConfig() Config {
	return Config{
		Enabled:       true,
		SecurityLevel: aft.LevelSignedOptional,
		DefaultTTL:    DefaultIdleTTL,
		MaxTTL:        DefaultMaxTTL,
		CacheMax:      DefaultCacheMax,
		AdvertisedTTL: DefaultAdvertisedTTL,
	}
}

// normalize fills defaults and rejects nonsense.
func (c Config) normalize() (Config, error) {
	lvl, err := ParseLevel(string(c.SecurityLevel))
	if err != nil {
		return c, err
	}
	c.SecurityLevel = lvl
	if c.DefaultTTL < 0 || c.MaxTTL < 0 || c.AdvertisedTTL < 0 {
		return c, fmt.Errorf("%w: negative TTL", ErrInvalidConfig)
	}
	if c.CacheMax < 0 {
		return c, fmt.Errorf("%w: negative cache_max %d", ErrInvalidConfig, c.CacheMax)
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = DefaultMaxTTL
	}
	if c.DefaultTTL == 0 {
		c.DefaultTTL = DefaultIdleTTL
	}
	if c.DefaultTTL > c.MaxTTL {
		c.DefaultTTL = c.MaxTTL
	}
	if c.CacheMax == 0 {
		c.CacheMax = DefaultCacheMax
	}
	if c.AdvertisedTTL == 0 {
		c.AdvertisedTTL = DefaultAdvertisedTTL
	}
	return c, nil
}
