// Package helm holds the test of the Helm chart in fame/ (deploy/helm/fame): it renders the
// chart with `helm template` for each profile and checks the manifests against what the
// binaries read: every FAME_* variable is one the container's program reads (config.Vars for
// the sentinel and the agents; the admission services' own ConfigFromEnv for oauth2, welcome
// and ca), the sentinel's rendered file loads and listens on the container port, the probe
// paths answer on the sentinel's mux, Secrets referenced exist with their keys, and the pod's
// grace period outlasts a drain. `make helm-check` runs it with `helm lint`.
package helm
