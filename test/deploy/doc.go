// Package deploy tests the deployment files — docker-compose.yml and its
// override, the Prometheus and Grafana provisioning under deploy/compose,
// the Kubernetes manifests and overlays, and the NATS Helm values — against
// the services' own code and configuration. It is its own module so that
// compose-go, the Kubernetes API types and kustomize stay out of the
// production modules' dependency graphs.
package deploy
