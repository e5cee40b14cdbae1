package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
)

// Shared rate limits: every sentinel publishes, about every 100 ms, how many tokens each rate
// limit key consumed locally since its last batch, on one core NATS subject of the cluster
// (fame.<cluster>.rate); every peer charges those tokens into its own bucket for the key, so a
// caller spread over N sentinels gets its limit once, not N times. No JetStream, no ack: a
// lost batch only lets a caller exceed its limit by one interval's worth.

// MaxRateBatch bounds the uses in one batch (a sender splits, a receiver refuses more).
const MaxRateBatch = 512

// maxRateKey bounds one key (identities and addresses are far shorter).
const maxRateKey = 1024

// ErrBadRateBatch: a rate batch that does not decode or breaks a bound.
var ErrBadRateBatch = errors.New("cluster: bad rate batch")

// RateUse is the tokens one limit key consumed: Kind "identity" or "address".
type RateUse struct {
	Kind   string `json:"k"`
	Key    string `json:"n"`
	Tokens int64  `json:"t"`
}

type rateBatch struct {
	From string    `json:"s"`
	Uses []RateUse `json:"u"`
}

// RateSubject is the subject the cluster's rate batches travel on.
func RateSubject(cluster string) string { return "fame." + cluster + ".rate" }

// EncodeRateBatch encodes one batch (at most MaxRateBatch uses).
func EncodeRateBatch(from string, uses []RateUse) ([]byte, error) {
	if len(uses) > MaxRateBatch {
		return nil, fmt.Errorf("%w: %d uses (max %d)", ErrBadRateBatch, len(uses), MaxRateBatch)
	}
	return json.Marshal(rateBatch{From: from, Uses: uses})
}

// DecodeRateBatch decodes and checks one batch; bad input is an error, never a panic.
func DecodeRateBatch(data []byte) (from string, uses []RateUse, err error) {
	var b rateBatch
	if err := json.Unmarshal(data, &b); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrBadRateBatch, err)
	}
	if !validID(b.From) {
		return "", nil, fmt.Errorf("%w: sender %q", ErrBadRateBatch, b.From)
	}
	if len(b.Uses) > MaxRateBatch {
		return "", nil, fmt.Errorf("%w: %d uses (max %d)", ErrBadRateBatch, len(b.Uses), MaxRateBatch)
	}
	for _, u := range b.Uses {
		if u.Kind != "identity" && u.Kind != "address" {
			return "", nil, fmt.Errorf("%w: kind %q", ErrBadRateBatch, u.Kind)
		}
		if u.Key == "" || len(u.Key) > maxRateKey || u.Tokens <= 0 {
			return "", nil, fmt.Errorf("%w: use %q/%d", ErrBadRateBatch, u.Key, u.Tokens)
		}
	}
	return b.From, b.Uses, nil
}

// RateShare publishes and receives rate batches over a NATS connection.
type RateShare struct {
	nc      *nats.Conn
	subject string
	self    string
}

// NewRateShare shares rate consumption for sentinel cfg.SentinelID of cluster cfg.Name.
func NewRateShare(nc *nats.Conn, cfg Config) *RateShare {
	return &RateShare{nc: nc, subject: RateSubject(cfg.Name), self: cfg.SentinelID}
}

// PublishRate publishes uses, split into batches of at most MaxRateBatch; it does not wait.
func (r *RateShare) PublishRate(uses []RateUse) error {
	for len(uses) > 0 {
		n := min(len(uses), MaxRateBatch)
		data, err := EncodeRateBatch(r.self, uses[:n])
		if err != nil {
			return err
		}
		if err := r.nc.Publish(r.subject, data); err != nil {
			return fmt.Errorf("cluster: publish rate batch: %w", err)
		}
		uses = uses[n:]
	}
	return nil
}

// SubscribeRate delivers the peers' batches to fn (this sentinel's own are skipped), on one
// goroutine; a batch that does not decode reaches fn with its error. stop unsubscribes.
func (r *RateShare) SubscribeRate(fn func(from string, uses []RateUse, err error)) (stop func(), err error) {
	sub, err := r.nc.Subscribe(r.subject, func(m *nats.Msg) {
		from, uses, err := DecodeRateBatch(m.Data)
		if err == nil && strings.EqualFold(from, r.self) {
			return
		}
		fn(from, uses, err)
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: subscribe %s: %w", r.subject, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}
