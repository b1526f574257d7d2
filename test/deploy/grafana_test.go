package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/pdfpipe/pdfpipe/pkg/metrics"
	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// exported is what a stage's /metrics really serves: metric name → label
// names → values seen.
type exported map[string]map[string][]string

// scrapeStageMetrics runs the stages' own health server (servicemain.
// ServeHealth, what every stage serves on HEALTH_ADDR) on a real embedded
// JetStream with the pipeline set up, with the stages' metrics.Metrics
// holding the series every stage creates when it starts (as `pdfpipe up`,
// which runs them all, exports them), and reads /metrics once.
func scrapeStageMetrics(t *testing.T) exported {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	nc, err := srv.Connect("deploy-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	if _, err := pipeline.Setup(ctx, js, pipeline.Config{}); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // ServeHealth listens itself
	m := metrics.NewMetrics()
	for _, st := range []string{"gateway", "fetch", "parse", "embed", "ingest"} {
		m.Stage(st, stage.ClassNames()) // gateway.Run, stage.Runner.Run
	}
	m.Provider("openai") // embedder.New, for its default provider
	done := make(chan error, 1)
	go func() { done <- servicemain.ServeHealth(ctx, addr, nc, m) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeHealth: %v", err)
		}
	})

	var body []byte
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /metrics: %s", resp.Status)
		}
		body, err = io.ReadAll(resp.Body)
		return err
	})
	return parseExposition(t, body)
}

var sample = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? `)
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

func parseExposition(t *testing.T, body []byte) exported {
	t.Helper()
	out := exported{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sample.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("exposition line %q", line)
		}
		labels := out[m[1]]
		if labels == nil {
			labels = map[string][]string{}
			out[m[1]] = labels
		}
		for _, lp := range labelPair.FindAllStringSubmatch(m[3], -1) {
			if !slices.Contains(labels[lp[1]], lp[2]) {
				labels[lp[1]] = append(labels[lp[1]], lp[2])
			}
		}
	}
	return out
}

// prometheusOwn are the series Prometheus itself adds for every target.
var prometheusOwn = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added", "scrape_samples_post_metric_relabeling"}

// targetLabels are added by Prometheus to every scraped series.
var targetLabels = []string{"job", "instance"}

type grafanaDatasources struct {
	APIVersion  int `json:"apiVersion"`
	Datasources []struct {
		Name      string `json:"name"`
		UID       string `json:"uid"`
		Type      string `json:"type"`
		Access    string `json:"access"`
		URL       string `json:"url"`
		IsDefault bool   `json:"isDefault"`
		Editable  bool   `json:"editable"`
	} `json:"datasources"`
}

type grafanaProviders struct {
	APIVersion int `json:"apiVersion"`
	Providers  []struct {
		Name            string `json:"name"`
		Folder          string `json:"folder"`
		Type            string `json:"type"`
		DisableDeletion bool   `json:"disableDeletion"`
		AllowUIUpdates  bool   `json:"allowUiUpdates"`
		Options         struct {
			Path                      string `json:"path"`
			FoldersFromFilesStructure bool   `json:"foldersFromFilesStructure"`
		} `json:"options"`
	} `json:"providers"`
}

type dashboard struct {
	UID    string `json:"uid"`
	Title  string `json:"title"`
	Panels []struct {
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr       string `json:"expr"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestComposeGrafana: Grafana is provisioned with the compose Prometheus
// and a dashboard whose every query is valid PromQL over series that the
// stages really export, with queue depth, throughput, latency, error and
// embedding provider panels charting the stages' own counters and
// histograms.
func TestComposeGrafana(t *testing.T) {
	p := loadCompose(t, []string{"docker-compose.yml"}, nil)
	graf, prom := p.Services["grafana"], p.Services["prometheus"]
	provDir := bindSource(t, graf, "/etc/grafana/provisioning")

	var ds grafanaDatasources
	decodeStrict(t, filepath.Join(provDir, "datasources", "prometheus.yml"), &ds)
	if len(ds.Datasources) != 1 {
		t.Fatalf("datasources: %+v, want one", ds.Datasources)
	}
	src := ds.Datasources[0]
	u, err := url.Parse(src.URL)
	if err != nil || u.Hostname() != "prometheus" || !slices.Contains(containerPorts(prom), portOf(t, u.Host)) {
		t.Errorf("datasource URL %q does not name the prometheus service's port %v", src.URL, containerPorts(prom))
	}
	if src.Type != "prometheus" || src.UID == "" {
		t.Errorf("datasource %+v: want type prometheus with a uid", src)
	}

	var prov grafanaProviders
	decodeStrict(t, filepath.Join(provDir, "dashboards", "pdfpipe.yml"), &prov)
	if len(prov.Providers) != 1 {
		t.Fatalf("providers: %+v, want one", prov.Providers)
	}
	dashDir := bindSource(t, graf, prov.Providers[0].Options.Path)
	home := mustEnv(t, graf, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
	if filepath.Dir(home) != prov.Providers[0].Options.Path {
		t.Errorf("home dashboard %s is not in the provisioned folder %s", home, prov.Providers[0].Options.Path)
	}
	b, err := os.ReadFile(filepath.Join(dashDir, filepath.Base(home)))
	if err != nil {
		t.Fatalf("home dashboard: %v", err)
	}
	var dash dashboard
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("dashboard uid %q title %q", dash.UID, dash.Title)
	}

	metrics := scrapeStageMetrics(t)
	if _, ok := metrics["pdfpipe_stage_pending_messages"]; !ok {
		t.Fatalf("the stages do not export pdfpipe_stage_pending_messages; got %d metrics", len(metrics))
	}
	jobs := map[string]bool{}
	for name, s := range p.Services {
		if _, ok := env(s, "HEALTH_ADDR"); ok {
			jobs[name] = true
		}
	}
	pql := parser.NewParser(parser.Options{})
	var rows []string
	used := map[string]bool{}
	for _, panel := range dash.Panels {
		if panel.Type == "row" {
			rows = append(rows, strings.ToLower(panel.Title))
			continue
		}
		if panel.Datasource == nil || panel.Datasource.UID != src.UID {
			t.Errorf("panel %q: datasource %+v, want uid %s", panel.Title, panel.Datasource, src.UID)
		}
		if len(panel.Targets) == 0 {
			t.Errorf("panel %q: no query", panel.Title)
		}
		for _, target := range panel.Targets {
			if target.Datasource != nil && target.Datasource.UID != src.UID {
				t.Errorf("panel %q: query datasource %s, want %s", panel.Title, target.Datasource.UID, src.UID)
			}
			checkQuery(t, pql, panel.Title, target.Expr, metrics, jobs, used)
		}
	}
	for _, want := range []string{"queue depth", "throughput", "latency", "errors", "embedding provider"} {
		if !slices.Contains(rows, want) {
			t.Errorf("dashboard rows %v: no %q", rows, want)
		}
	}
	for _, name := range []string{"pdfpipe_stage_pending_messages", "pdfpipe_stage_redelivered_messages", "pdfpipe_stream_messages",
		"pdfpipe_stage_handle_seconds_bucket", "pdfpipe_documents_total", "pdfpipe_chunks_total", "pdfpipe_stage_errors_total",
		"pdfpipe_embed_provider_requests_total", "pdfpipe_embed_provider_tokens_total", "pdfpipe_embed_cache_lookups_total"} {
		if !used[name] {
			t.Errorf("no panel charts %s", name)
		}
	}
}

// checkQuery parses expr and checks each series it selects: the metric is
// exported (or one Prometheus adds), every label it matches or groups by
// exists on it, and label values it names exist.
func checkQuery(t *testing.T, pql parser.Parser, panel, expr string, metrics exported, jobs map[string]bool, used map[string]bool) {
	t.Helper()
	e, err := pql.ParseExpr(expr)
	if err != nil {
		t.Errorf("panel %q: %q: %v", panel, expr, err)
		return
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
			used[vs.Name] = true
			labels, exportedByUs := metrics[vs.Name]
			if !exportedByUs && !slices.Contains(prometheusOwn, vs.Name) {
				t.Errorf("panel %q: %s is not exported by the stages (nor added by Prometheus)", panel, vs.Name)
			}
			for _, m := range vs.LabelMatchers {
				switch {
				case m.Name == "__name__":
				case m.Name == "job":
					for _, j := range strings.Split(m.Value, "|") {
						if !jobs[j] {
							t.Errorf("panel %q: job %q is no Prometheus job (%v)", panel, j, jobs)
						}
					}
				case slices.Contains(targetLabels, m.Name):
				case exportedByUs && labels[m.Name] == nil:
					t.Errorf("panel %q: %s has no label %s", panel, vs.Name, m.Name)
				case exportedByUs && !slices.ContainsFunc(labels[m.Name], m.Matches):
					t.Errorf("panel %q: %s{%s} matches none of %v", panel, vs.Name, m, labels[m.Name])
				}
			}
		}
		return nil
	})
	if len(names) == 0 {
		t.Errorf("panel %q: %q selects no series", panel, expr)
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		agg, ok := n.(*parser.AggregateExpr)
		if !ok {
			return nil
		}
		for _, l := range agg.Grouping {
			if slices.Contains(targetLabels, l) {
				continue
			}
			found := false
			parser.Inspect(agg.Expr, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok && metrics[vs.Name][l] != nil {
					found = true
				}
				return nil
			})
			if !found {
				t.Errorf("panel %q: groups by %s, which no series below it has", panel, l)
			}
		}
		return nil
	})
}

// decodeStrict decodes YAML into v; unknown fields are errors.
func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := strict(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
