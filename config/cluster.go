package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/fame-go/fame/cluster/clustercfg"
)

// ClusterFile is the `cluster:` block of the sentinel's file (a top-level key beside node:
// and logging:; fame-go's own, the reference has no cluster). Absent or empty: no cluster,
// the sentinel behaves as a single one. `listen` starts the embedded NATS server with routes
// to `routes`; `url` uses a NATS the operator runs instead. Durations are Go durations.
type ClusterFile struct {
	Name         string          `yaml:"name,omitempty"`
	Listen       string          `yaml:"listen,omitempty"`
	Routes       []string        `yaml:"routes,omitempty"`
	ClientListen string          `yaml:"client_listen,omitempty"`
	URL          string          `yaml:"url,omitempty"`
	DataDir      string          `yaml:"data_dir,omitempty"`
	DataListen   string          `yaml:"data_listen,omitempty"`
	DataAdvert   string          `yaml:"data_advertise,omitempty"`
	Replicas     int             `yaml:"replicas,omitempty"`
	TLS          ClusterTLSFile  `yaml:"tls,omitempty"`
	Auth         ClusterAuthFile `yaml:"auth,omitempty"`
	Heartbeat    string          `yaml:"heartbeat,omitempty"`
	MissedBeats  int             `yaml:"missed_beats,omitempty"`
	DirectoryTTL string          `yaml:"directory_ttl,omitempty"`
	BindingTTL   string          `yaml:"binding_ttl,omitempty"`
	CacheMax     int             `yaml:"cache_max,omitempty"`
	WriteTimeout string          `yaml:"write_timeout,omitempty"`
	LameDuck     string          `yaml:"lame_duck,omitempty"`
	Grace        string          `yaml:"grace,omitempty"`
}

// ClusterTLSFile names the PEM files of the cluster's mutual TLS (issued by the stack CA).
type ClusterTLSFile struct {
	Cert string `yaml:"cert,omitempty"`
	Key  string `yaml:"key,omitempty"`
	CA   string `yaml:"ca,omitempty"`
}

// ClusterAuthFile holds the cluster's NATS credentials. Prefer ${env:FAME_CLUSTER_PASSWORD}
// (or the variable alone) to a password written in the file.
type ClusterAuthFile struct {
	User         string `yaml:"user,omitempty"`
	Password     string `yaml:"password,omitempty"`
	NkeySeedFile string `yaml:"nkey_seed_file,omitempty"`
}

// ClusterConfig merges the `cluster:` block (nil: none) with the FAME_CLUSTER_* variables,
// which win over it, into a clustercfg.Config for the sentinel nodeID. An empty data_dir
// defaults to "nats" beside storagePath (the bbolt file) when there is one. It returns every
// problem at once: malformed variables and durations, then clustercfg.Config.Validate's
// findings. With neither block nor variables the config is disabled and there is no problem.
func ClusterConfig(f *ClusterFile, env Getenv, nodeID, storagePath string) (clustercfg.Config, []string) {
	var c ClusterFile
	if f != nil {
		c = *f
	}
	e := &vars{env: env}
	set := func(dst *string, name string) {
		if v := e.str(name); v != "" {
			*dst = v
		}
	}
	set(&c.Name, "FAME_CLUSTER_NAME")
	set(&c.Listen, "FAME_CLUSTER_LISTEN")
	set(&c.URL, "FAME_CLUSTER_URL")
	set(&c.ClientListen, "FAME_CLUSTER_CLIENT_LISTEN")
	set(&c.DataDir, "FAME_CLUSTER_DATA_DIR")
	set(&c.DataListen, "FAME_CLUSTER_DATA_LISTEN")
	set(&c.DataAdvert, "FAME_CLUSTER_DATA_ADVERTISE")
	set(&c.TLS.Cert, "FAME_CLUSTER_TLS_CERT")
	set(&c.TLS.Key, "FAME_CLUSTER_TLS_KEY")
	set(&c.TLS.CA, "FAME_CLUSTER_TLS_CA")
	set(&c.Auth.User, "FAME_CLUSTER_USER")
	set(&c.Auth.Password, "FAME_CLUSTER_PASSWORD")
	set(&c.Auth.NkeySeedFile, "FAME_CLUSTER_NKEY_SEED_FILE")
	set(&c.Heartbeat, "FAME_CLUSTER_HEARTBEAT")
	if v := e.str("FAME_CLUSTER_ROUTES"); v != "" {
		c.Routes = nil
		for _, r := range strings.Split(v, ",") {
			if r = strings.TrimSpace(r); r != "" {
				c.Routes = append(c.Routes, r)
			}
		}
	}
	if n := e.integer("FAME_CLUSTER_REPLICAS"); n != nil {
		c.Replicas = *n
	}
	problems := e.problems
	out := clustercfg.Config{
		Name: c.Name, SentinelID: nodeID, Listen: c.Listen, Routes: c.Routes,
		ClientListen: c.ClientListen, URL: c.URL, DataDir: c.DataDir, Replicas: c.Replicas,
		DataListen: c.DataListen, DataAdvertise: c.DataAdvert,
		TLS:         clustercfg.TLSFiles{Cert: c.TLS.Cert, Key: c.TLS.Key, CA: c.TLS.CA},
		Auth:        clustercfg.Auth{User: c.Auth.User, Password: c.Auth.Password, NkeySeedFile: c.Auth.NkeySeedFile},
		MissedBeats: c.MissedBeats, CacheMax: c.CacheMax,
	}
	if !out.Enabled() {
		if c.Name != "" || len(c.Routes) > 0 {
			problems = append(problems, "cluster: name or routes given without listen (embedded NATS) or url (external NATS)")
		}
		return clustercfg.Config{}, problems
	}
	if out.Embedded() && out.DataDir == "" && storagePath != "" {
		out.DataDir = filepath.Join(filepath.Dir(storagePath), "nats")
	}
	for _, d := range []struct {
		key string
		v   string
		dst *time.Duration
	}{
		{"cluster.heartbeat", c.Heartbeat, &out.Heartbeat},
		{"cluster.directory_ttl", c.DirectoryTTL, &out.DirectoryTTL},
		{"cluster.binding_ttl", c.BindingTTL, &out.BindingTTL},
		{"cluster.write_timeout", c.WriteTimeout, &out.WriteTimeout},
		{"cluster.lame_duck", c.LameDuck, &out.LameDuck},
		{"cluster.grace", c.Grace, &out.Grace},
	} {
		if d.v == "" {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil || v <= 0 {
			problems = append(problems, fmt.Sprintf("%s: %q is not a positive duration (e.g. 1s)", d.key, d.v))
			continue
		}
		*d.dst = v
	}
	norm, err := out.Normalize()
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			problems = append(problems, line)
		}
	}
	return norm, problems
}
