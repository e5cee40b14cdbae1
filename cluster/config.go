package cluster

import "github.com/fame-go/fame/cluster/clustercfg"

// The configuration lives in the leaf package clustercfg (config/ parses it
// without linking nats-server); these aliases keep cluster.Config the name
// callers use.
type (
	Config   = clustercfg.Config
	TLSFiles = clustercfg.TLSFiles
	Auth     = clustercfg.Auth
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = clustercfg.ErrConfig

// Defaults of Config's zero fields (see clustercfg).
const (
	DefaultHeartbeat    = clustercfg.DefaultHeartbeat
	DefaultMissedBeats  = clustercfg.DefaultMissedBeats
	DefaultDirectoryTTL = clustercfg.DefaultDirectoryTTL
	DefaultBindingTTL   = clustercfg.DefaultBindingTTL
	DefaultCacheMax     = clustercfg.DefaultCacheMax
	DefaultWriteTimeout = clustercfg.DefaultWriteTimeout
	DefaultLameDuck     = clustercfg.DefaultLameDuck
	DefaultClientListen = clustercfg.DefaultClientListen
	MaxReplicas         = clustercfg.MaxReplicas
)

var validID = clustercfg.ValidID
