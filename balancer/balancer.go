package balancer

import (
	"errors"
	"fmt"
)

// Member is one candidate of a pool.
type Member struct {
	// ID is the replica's system id (the route key in the sentinel).
	ID string
	// Load is the number of sessions currently attached to the member; the
	// caller keeps it up to date. Negative values are treated as zero.
	Load int64
}

// Strategy chooses a member for a new session. key is the client session id.
// ok is false if and only if members is empty.
type Strategy interface {
	Pick(key string, members []Member) (id string, ok bool)
}

// Strategy names accepted by New.
const (
	NameHRW              = "hrw"
	NameRoundRobin       = "round_robin"
	NameRandom           = "random"
	NameLeastConnections = "least_connections"
)

// ErrUnknownStrategy is returned (wrapped in *UnknownStrategyError) by New for
// a name it does not know.
var ErrUnknownStrategy = errors.New("balancer: unknown strategy")

// UnknownStrategyError carries the rejected name; errors.Is(err,
// ErrUnknownStrategy) holds for it.
type UnknownStrategyError struct{ Name string }

func (e *UnknownStrategyError) Error() string {
	return fmt.Sprintf("%v %q (want one of %q, %q, %q, %q)", ErrUnknownStrategy, e.Name,
		NameHRW, NameRoundRobin, NameRandom, NameLeastConnections)
}

// Is makes errors.Is(err, ErrUnknownStrategy) work.
func (e *UnknownStrategyError) Is(target error) bool { return target == ErrUnknownStrategy }

// Names lists the accepted strategy names, default first (for config
// validation and help texts).
func Names() []string {
	return []string{NameHRW, NameRoundRobin, NameRandom, NameLeastConnections}
}

// New returns the strategy called name; "" means the default, "hrw".
func New(name string) (Strategy, error) {
	switch name {
	case "", NameHRW:
		return NewHRW(DefaultLoadFactor), nil
	case NameRoundRobin:
		return &RoundRobin{}, nil
	case NameRandom:
		return Random{}, nil
	case NameLeastConnections:
		return LeastConnections{}, nil
	default:
		return nil, &UnknownStrategyError{Name: name}
	}
}

func load(m Member) int64 {
	if m.Load < 0 {
		return 0
	}
	return m.Load
}
