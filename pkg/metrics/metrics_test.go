package metrics_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pdfpipe/pdfpipe/pkg/metrics"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
)

func TestCollectorReportsQueueDepthPerStage(t *testing.T) {
	env := stagetest.New(t)
	js := env.JS
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		id := fmt.Sprintf("t%d", i)
		if _, err := pipeline.Publish(ctx, js, pipeline.Parse.Subject(id), id, "", pipeline.ParseJob{}); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.New(js, pipeline.MetricsTopology()))
	want := `
# HELP pdfpipe_stage_pending_messages Messages waiting for a stage (not yet delivered).
# TYPE pdfpipe_stage_pending_messages gauge
pdfpipe_stage_pending_messages{stage="embed"} 0
pdfpipe_stage_pending_messages{stage="fetch"} 0
pdfpipe_stage_pending_messages{stage="ingest"} 0
pdfpipe_stage_pending_messages{stage="parse"} 3
# HELP pdfpipe_stream_messages Messages retained in a pipeline stream.
# TYPE pdfpipe_stream_messages gauge
pdfpipe_stream_messages{stream="PDFPIPE"} 3
pdfpipe_stream_messages{stream="PDFPIPE_VECTORS"} 0
# HELP pdfpipe_jetstream_up 1 when the last scrape could read JetStream.
# TYPE pdfpipe_jetstream_up gauge
pdfpipe_jetstream_up 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"pdfpipe_stage_pending_messages", "pdfpipe_stream_messages", "pdfpipe_jetstream_up"); err != nil {
		t.Fatal(err)
	}
}
