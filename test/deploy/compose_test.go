package deploy

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// loadCompose loads compose files (relative to the repository root) as
// `docker compose` would, with env as the whole environment (never the
// test process's own) and the given profiles.
func loadCompose(t *testing.T, files []string, env map[string]string, profiles ...string) *types.Project {
	t.Helper()
	root := testenv.RepoRoot(t)
	var abs, environ []string
	for _, f := range files {
		abs = append(abs, filepath.Join(root, f))
	}
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	opts, err := cli.NewProjectOptions(abs,
		cli.WithWorkingDirectory(root),
		cli.WithEnv(environ),
		cli.WithProfiles(profiles),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load %v: %v", files, err)
	}
	return p
}

// stageNames are the pipeline's services: every services/NAME with a
// cmd/NAME main package.
func stageNames(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "services", "*", "cmd", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, dir := range m {
		if filepath.Base(dir) == filepath.Base(filepath.Dir(filepath.Dir(dir))) {
			names = append(names, filepath.Base(dir))
		}
	}
	sort.Strings(names)
	if len(names) != 5 {
		t.Fatalf("found stages %v, want five", names)
	}
	return names
}

func env(s types.ServiceConfig, name string) (string, bool) {
	v, ok := s.Environment[name]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

func mustEnv(t *testing.T, s types.ServiceConfig, name string) string {
	t.Helper()
	v, ok := env(s, name)
	if !ok {
		t.Fatalf("%s: %s is not set", s.Name, name)
	}
	return v
}

// containerPorts are the target ports a service publishes.
func containerPorts(s types.ServiceConfig) []uint32 {
	var ports []uint32
	for _, p := range s.Ports {
		ports = append(ports, p.Target)
	}
	return ports
}

// portOf is the port of a listen address like ":8080" or "host:8080".
func portOf(t *testing.T, addr string) uint32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return uint32(n)
}

// listensOn reports whether service s has a container port n: one it
// publishes, one its image EXPOSEs, or the port its command names.
func listensOn(s types.ServiceConfig, docker map[string]*dockerTarget, n uint32) bool {
	if slices.Contains(containerPorts(s), n) {
		return true
	}
	if s.Build != nil {
		if dt := docker[s.Build.Target]; dt != nil && slices.Contains(dt.Expose, strconv.Itoa(int(n))) {
			return true
		}
	}
	return false
}

// dependsOn checks that s waits for dep with the condition.
func dependsOn(t *testing.T, s types.ServiceConfig, dep, condition string) {
	t.Helper()
	d, ok := s.DependsOn[dep]
	if !ok {
		t.Errorf("%s: does not depend on %s", s.Name, dep)
		return
	}
	if d.Condition != condition {
		t.Errorf("%s: depends on %s with condition %q, want %q", s.Name, dep, d.Condition, condition)
	}
}

// TestComposeServices: the file has every part of the real path and each
// service's settings are ones its own code reads.
func TestComposeServices(t *testing.T) {
	p := loadCompose(t, []string{"docker-compose.yml"}, nil)
	docker := dockerfileTargets(t)
	documented := readmeEnv(t)
	stages := stageNames(t)

	want := append([]string{"nats", "redis", "minio", "minio-init", "ingest-sink", "prometheus", "grafana"}, stages...)
	sort.Strings(want)
	if got := p.ServiceNames(); !slices.Equal(got, want) {
		t.Errorf("started by default: %v, want %v", got, want)
	}
	if got := p.DisabledServiceNames(); !slices.Equal(got, []string{"tei"}) {
		t.Errorf("in profiles: %v, want [tei]", got)
	}

	for name, s := range p.Services {
		t.Run(name, func(t *testing.T) {
			if s.Build == nil {
				if s.Image == "" {
					t.Fatal("neither build nor image")
				}
				return
			}
			dt := docker[s.Build.Target]
			if dt == nil || dt.Binary == "" {
				t.Fatalf("build target %q: no such Dockerfile stage with an ENTRYPOINT", s.Build.Target)
			}
			if s.Image != "pdfpipe/"+s.Build.Target+":dev" {
				t.Errorf("image %q, want pdfpipe/%s:dev", s.Image, s.Build.Target)
			}
			reads := envReadBy(t, commandDir(t, dt.Binary))
			for k := range s.Environment {
				if goRuntimeEnv[k] {
					continue
				}
				if _, ok := documented[k]; !ok {
					t.Errorf("sets %s, which the README's configuration table does not list", k)
				}
				if !reads[k] {
					t.Errorf("sets %s, which %s (%s) never reads", k, dt.Binary, commandDir(t, dt.Binary))
				}
			}
			if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") {
				t.Errorf("read_only %v, cap_drop %v: want a read-only root and every capability dropped", s.ReadOnly, s.CapDrop)
			}
			for _, port := range s.Ports {
				if !slices.Contains(dt.Expose, strconv.Itoa(int(port.Target))) {
					t.Errorf("publishes container port %d, which the image does not EXPOSE (%v)", port.Target, dt.Expose)
				}
			}
		})
	}

	natsSvc := p.Services["nats"]
	for _, flag := range []string{"-js", "-sd", "-m"} {
		if !slices.Contains(natsSvc.Command, flag) {
			t.Errorf("nats: command %v lacks %s (JetStream, its store, monitoring)", natsSvc.Command, flag)
		}
	}
	if !slices.Contains(containerPorts(natsSvc), 8222) {
		t.Errorf("nats: monitoring port 8222 not published: %v", containerPorts(natsSvc))
	}

	for _, name := range stages {
		s := p.Services[name]
		u, err := url.Parse(mustEnv(t, s, "NATS_URL"))
		if err != nil || u.Hostname() != "nats" || !listensOn(natsSvc, docker, portOf(t, u.Host)) {
			t.Errorf("%s: NATS_URL %v does not name the nats service's client port", name, u)
		}
		dependsOn(t, s, "nats", types.ServiceConditionHealthy)
		health := mustEnv(t, s, "HEALTH_ADDR")
		if s.HealthCheck == nil || s.HealthCheck.Disable || !slices.Contains(s.HealthCheck.Test, "/usr/local/bin/healthcheck") {
			t.Errorf("%s: healthcheck %v, want the image's /readyz probe on HEALTH_ADDR %s", name, s.HealthCheck, health)
		}
	}

	gw := p.Services["gateway"]
	u, err := url.Parse(mustEnv(t, gw, "REDIS_URL"))
	if err != nil || u.Hostname() != "redis" || !listensOn(p.Services["redis"], docker, portOf(t, u.Host)) {
		t.Errorf("gateway: REDIS_URL %v does not name the redis service", u)
	}
	dependsOn(t, gw, "redis", types.ServiceConditionHealthy)
	for _, v := range []string{"GRPC_SERVER_PORT", "GRPC_EMBEDDING_PORT"} {
		port, err := strconv.Atoi(mustEnv(t, gw, v))
		if err != nil || !slices.Contains(containerPorts(gw), uint32(port)) {
			t.Errorf("gateway: %s=%s is not a published container port %v", v, mustEnv(t, gw, v), containerPorts(gw))
		}
	}

	fetcher, minio, initSvc := p.Services["fetcher"], p.Services["minio"], p.Services["minio-init"]
	endpoint := mustEnv(t, fetcher, "BUCKET_ENDPOINT")
	if host, _, _ := net.SplitHostPort(endpoint); host != "minio" || !listensOn(minio, docker, portOf(t, endpoint)) {
		t.Errorf("fetcher: BUCKET_ENDPOINT %q does not name the minio service's S3 port", endpoint)
	}
	if got := mustEnv(t, fetcher, "STORAGE_TYPE"); got != "minio" {
		t.Errorf("fetcher: STORAGE_TYPE %q, want minio", got)
	}
	for _, v := range []string{"BUCKET_NAME", "BUCKET_ACCESS_ID", "BUCKET_ACCESS_KEY"} {
		if a, b := mustEnv(t, fetcher, v), mustEnv(t, initSvc, v); a == "" || a != b {
			t.Errorf("%s: fetcher has %q, minio-init creates %q", v, a, b)
		}
	}
	dependsOn(t, fetcher, "minio-init", types.ServiceConditionCompletedSuccessfully)
	dependsOn(t, initSvc, "minio", types.ServiceConditionHealthy)
	if script := strings.Join(initSvc.Command, " "); !strings.Contains(script, "mc mb") || !strings.Contains(script, "$BUCKET_NAME") {
		t.Errorf("minio-init: command does not create the bucket: %q", script)
	}
	if initSvc.Restart != "no" {
		t.Errorf("minio-init: restart %q, want no (a one-shot job)", initSvc.Restart)
	}

	ing, sink := p.Services["ingester"], p.Services["ingest-sink"]
	addr := mustEnv(t, ing, "GO_GRPC_INGEST_ADDR")
	if host, _, _ := net.SplitHostPort(addr); host != "ingest-sink" || portOf(t, addr) != portOf(t, mustEnv(t, sink, "INGEST_SINK_ADDR")) {
		t.Errorf("ingester: GO_GRPC_INGEST_ADDR %q is not where ingest-sink listens (%s)", addr, mustEnv(t, sink, "INGEST_SINK_ADDR"))
	}
	dependsOn(t, ing, "ingest-sink", types.ServiceConditionHealthy)

	emb := p.Services["embedder"]
	if d := emb.DependsOn["tei"]; d.Required || d.Condition != types.ServiceConditionHealthy {
		t.Errorf("embedder: depends on tei %+v, want healthy and not required (profile tei)", d)
	}
	if got, _ := env(emb, "EMBEDDING_PROVIDER"); got != "local" {
		t.Errorf("embedder: EMBEDDING_PROVIDER %q by default, want local (no model download)", got)
	}

	// Every service that others wait for as healthy has a healthcheck, and so
	// does every long-running service.
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				target, ok = p.DisabledServices[dep]
			}
			if !ok {
				t.Errorf("%s: depends on %s, which does not exist", name, dep)
				continue
			}
			if d.Condition == types.ServiceConditionHealthy && (target.HealthCheck == nil || target.HealthCheck.Disable) {
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
		if s.Restart != "no" && (s.HealthCheck == nil || len(s.HealthCheck.Test) == 0) {
			t.Errorf("%s: no healthcheck", name)
		}
	}
}

// TestComposePortsBindLoopback: nothing is published beyond this machine
// by default, and each published port is free of clashes.
func TestComposePortsBindLoopback(t *testing.T) {
	p := loadCompose(t, []string{"docker-compose.yml"}, nil, "tei")
	seen := map[string]string{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %d published on %q, want 127.0.0.1", name, port.Target, port.HostIP)
			}
			if other, ok := seen[port.Published]; ok {
				t.Errorf("host port %s published by %s and %s", port.Published, other, name)
			}
			seen[port.Published] = name
		}
	}
	p = loadCompose(t, []string{"docker-compose.yml"}, map[string]string{"PDFPIPE_BIND": "0.0.0.0"})
	if got := p.Services["gateway"].Ports[0].HostIP; got != "0.0.0.0" {
		t.Errorf("PDFPIPE_BIND=0.0.0.0: gateway binds %q", got)
	}
}

// TestComposeVolumes: every named volume is declared and used, and every
// file mounted from the repository exists.
func TestComposeVolumes(t *testing.T) {
	p := loadCompose(t, []string{"docker-compose.yml"}, nil, "tei")
	used := map[string]bool{}
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeVolume:
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s: volume %q is not declared", name, v.Source)
				}
				used[v.Source] = true
			case types.VolumeTypeBind:
				if !strings.HasPrefix(v.Source, testenv.RepoRoot(t)) {
					t.Errorf("%s: binds %s from outside the repository", name, v.Source)
				}
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s: bind source: %v", name, err)
				}
				if !v.ReadOnly {
					t.Errorf("%s: binds %s writable, want :ro", name, v.Source)
				}
			default:
				t.Errorf("%s: volume type %q", name, v.Type)
			}
		}
	}
	for name := range p.Volumes {
		if !used[name] {
			t.Errorf("volume %s is declared but no service uses it", name)
		}
	}
	if vols := p.Services["parser"].Volumes; len(vols) != 1 || vols[0].Target != mustEnv(t, p.Services["parser"], "TEMP_DIR") {
		t.Errorf("parser: volumes %+v, want one at TEMP_DIR (its root filesystem is read-only)", vols)
	}
	sink := p.Services["ingest-sink"]
	out := mustEnv(t, sink, "INGEST_SINK_OUT")
	if vols := sink.Volumes; len(vols) != 1 || filepath.Dir(out) != vols[0].Target {
		t.Errorf("ingest-sink: INGEST_SINK_OUT %s is not on its volume %+v", out, vols)
	}
}

// TestComposeTEI: the documented env file switches the embedder to TEI.
func TestComposeTEI(t *testing.T) {
	envFile := map[string]string{}
	for _, line := range strings.Split(string(readFile(t, "deploy/compose/tei.env")), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			envFile[k] = v
		}
	}
	p := loadCompose(t, []string{"docker-compose.yml"}, envFile, strings.Split(envFile["COMPOSE_PROFILES"], ",")...)
	emb, ok := p.Services["embedder"]
	if !ok {
		t.Fatal("no embedder")
	}
	tei, ok := p.Services["tei"]
	if !ok {
		t.Fatalf("tei not enabled by tei.env's COMPOSE_PROFILES %q", envFile["COMPOSE_PROFILES"])
	}
	u, err := url.Parse(mustEnv(t, emb, "EMBEDDING_BASE_URL"))
	if err != nil || u.Hostname() != "tei" {
		t.Errorf("embedder: EMBEDDING_BASE_URL %v does not name the tei service", u)
	}
	if got := mustEnv(t, emb, "EMBEDDING_PROVIDER"); got != "openai" {
		t.Errorf("embedder: EMBEDDING_PROVIDER %q, want openai (TEI speaks its API)", got)
	}
	if tei.HealthCheck == nil {
		t.Error("tei: no healthcheck, but the embedder waits for it to be healthy")
	}
	if _, ok := p.Services["ingest-sink"]; !ok {
		t.Error("tei.env: ingest-sink is no longer started")
	}
}

// TestComposeBackendOverride: deploy/compose/backend.yml points the
// ingester at the backend and leaves the sink out.
func TestComposeBackendOverride(t *testing.T) {
	files := []string{"docker-compose.yml", "deploy/compose/backend.yml"}
	p := loadCompose(t, files, nil)
	ing := p.Services["ingester"]
	if got := mustEnv(t, ing, "GO_GRPC_INGEST_ADDR"); got != "host.docker.internal:50051" {
		t.Errorf("ingester: GO_GRPC_INGEST_ADDR %q, want the host's :50051 by default", got)
	}
	if _, ok := ing.DependsOn["ingest-sink"]; ok {
		t.Error("ingester still waits for ingest-sink")
	}
	dependsOn(t, ing, "nats", types.ServiceConditionHealthy)
	if _, ok := p.Services["ingest-sink"]; ok {
		t.Error("ingest-sink still started")
	}
	if !slices.Contains(ing.ExtraHosts["host.docker.internal"], "host-gateway") {
		t.Errorf("ingester: extra_hosts %v, want host.docker.internal:host-gateway", ing.ExtraHosts)
	}
	// Everything else stays as it was.
	base := loadCompose(t, []string{"docker-compose.yml"}, nil)
	for name := range base.Services {
		if _, ok := p.Services[name]; !ok && name != "ingest-sink" {
			t.Errorf("the override drops %s", name)
		}
	}

	p = loadCompose(t, files, map[string]string{"GO_GRPC_INGEST_ADDR": "backend.internal:6000"})
	if got := mustEnv(t, p.Services["ingester"], "GO_GRPC_INGEST_ADDR"); got != "backend.internal:6000" {
		t.Errorf("GO_GRPC_INGEST_ADDR from the environment: got %q", got)
	}
}

// prometheusConfig is the part of prometheus.yml the stack uses. Unknown
// fields fail the decode, so a typo is caught here.
type prometheusConfig struct {
	Global struct {
		ScrapeInterval     string `json:"scrape_interval"`
		EvaluationInterval string `json:"evaluation_interval"`
	} `json:"global"`
	ScrapeConfigs []struct {
		JobName      string `json:"job_name"`
		DNSSDConfigs []struct {
			Names []string `json:"names"`
			Type  string   `json:"type"`
			Port  int      `json:"port"`
		} `json:"dns_sd_configs"`
		StaticConfigs []struct {
			Targets []string `json:"targets"`
		} `json:"static_configs"`
	} `json:"scrape_configs"`
}

// bindSource is the repository file a service mounts at target.
func bindSource(t *testing.T, s types.ServiceConfig, target string) string {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == target {
			return v.Source
		}
	}
	t.Fatalf("%s: nothing mounted at %s", s.Name, target)
	return ""
}

// TestComposePrometheus: Prometheus scrapes /metrics of every copy of every
// service that serves it (HEALTH_ADDR), on that port.
func TestComposePrometheus(t *testing.T) {
	p := loadCompose(t, []string{"docker-compose.yml"}, nil)
	prom := p.Services["prometheus"]
	var cfgPath string
	for _, arg := range prom.Command {
		if v, ok := strings.CutPrefix(arg, "--config.file="); ok {
			cfgPath = bindSource(t, prom, v)
		}
	}
	if cfgPath == "" {
		t.Fatalf("prometheus: command %v has no --config.file", prom.Command)
	}
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg prometheusConfig
	if err := strict(b, &cfg); err != nil {
		t.Fatalf("%s: %v", cfgPath, err)
	}
	scraped := map[string]uint32{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, sd := range sc.DNSSDConfigs {
			if sd.Type != "A" || len(sd.Names) != 1 {
				t.Errorf("job %s: dns_sd %+v, want one service name, type A", sc.JobName, sd)
				continue
			}
			if sc.JobName != sd.Names[0] {
				t.Errorf("job %s scrapes %s: the dashboard groups by job = service", sc.JobName, sd.Names[0])
			}
			scraped[sd.Names[0]] = uint32(sd.Port)
		}
	}
	var serving []string
	for name, s := range p.Services {
		addr, ok := env(s, "HEALTH_ADDR")
		if !ok {
			continue
		}
		serving = append(serving, name)
		port, ok := scraped[name]
		if !ok {
			t.Errorf("%s serves /metrics on %s but Prometheus does not scrape it", name, addr)
		} else if port != portOf(t, addr) {
			t.Errorf("%s: Prometheus scrapes port %d, HEALTH_ADDR is %s", name, port, addr)
		}
	}
	for name := range scraped {
		if !slices.Contains(serving, name) {
			t.Errorf("Prometheus scrapes %s, which serves no HEALTH_ADDR", name)
		}
	}
	if len(serving) != len(stageNames(t)) {
		t.Errorf("services with HEALTH_ADDR: %v, want the %d stages", serving, len(stageNames(t)))
	}
}
