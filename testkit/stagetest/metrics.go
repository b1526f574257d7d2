package stagetest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pdfpipe/pdfpipe/pkg/metrics"
)

// WithMetrics gives the stages started on e afterwards a metrics.Metrics
// (through e.Res.Config, as servicemain does) and returns the registry
// it is registered in, for Metric.
func (e *Env) WithMetrics(t testing.TB) *prometheus.Registry {
	t.Helper()
	m := metrics.NewMetrics()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	e.Res.Config.Metrics = m
	return reg
}

// Metric sums the series of name whose labels include labels: counter and
// gauge values, a histogram's observation count. A name g does not serve
// fails the test; no matching series is 0.
func Metric(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		sum := 0.0
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return sum
	}
	t.Fatalf("no metric %s", name)
	return 0
}
