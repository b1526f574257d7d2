// Package metrics exports pdfpipe's numbers for Prometheus, of two kinds.
//
// The pipeline's state is read from JetStream at scrape time (Collector):
// per stage, how many messages wait, how many are being worked on, how many
// were redelivered; per stream, messages and bytes. These are the numbers
// an autoscaler and an operator at 3 a.m. want, and every replica reports
// the same truth because it comes from the server, not from the process.
//
// What a process did is counted as it happens (Metrics): per stage the
// time each message took, documents, pages, chunks and bytes handled,
// errors by reason class; the embedding provider's requests, tokens and
// 429s; the embedding cache's hits.
package metrics

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Topology names what a Collector reads: each stage's durable consumer on
// Stream, and the streams whose size it reports.
type Topology struct {
	Stream    string
	Consumers []Consumer
	Streams   []string
}

// Consumer is one stage's durable consumer.
type Consumer struct{ Stage, Durable string }

// Collector reads consumer and stream state on each scrape.
type Collector struct {
	js      jetstream.JetStream
	top     Topology
	timeout time.Duration

	pending, ackPending, redelivered, waiting *prometheus.Desc
	streamMsgs, streamBytes, up               *prometheus.Desc
}

// New returns a Collector of top's consumers and streams over js.
func New(js jetstream.JetStream, top Topology) *Collector {
	stage := []string{"stage"}
	return &Collector{
		js: js, top: top, timeout: 5 * time.Second,
		pending:     prometheus.NewDesc("pdfpipe_stage_pending_messages", "Messages waiting for a stage (not yet delivered).", stage, nil),
		ackPending:  prometheus.NewDesc("pdfpipe_stage_in_progress_messages", "Messages delivered to a stage and not yet acknowledged.", stage, nil),
		redelivered: prometheus.NewDesc("pdfpipe_stage_redelivered_messages", "Messages of a stage delivered more than once and not yet acknowledged.", stage, nil),
		waiting:     prometheus.NewDesc("pdfpipe_stage_waiting_pulls", "Pull requests of a stage's replicas waiting for work.", stage, nil),
		streamMsgs:  prometheus.NewDesc("pdfpipe_stream_messages", "Messages retained in a pipeline stream.", []string{"stream"}, nil),
		streamBytes: prometheus.NewDesc("pdfpipe_stream_bytes", "Bytes retained in a pipeline stream.", []string{"stream"}, nil),
		up:          prometheus.NewDesc("pdfpipe_jetstream_up", "1 when the last scrape could read JetStream.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.ackPending, c.redelivered, c.waiting, c.streamMsgs, c.streamBytes, c.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	up := 1.0
	for _, st := range c.top.Consumers {
		cons, err := c.js.Consumer(ctx, c.top.Stream, st.Durable)
		if err != nil {
			up = 0
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			up = 0
			continue
		}
		name := st.Stage
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(info.NumPending), name)
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(info.NumAckPending), name)
		ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(info.NumRedelivered), name)
		ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(info.NumWaiting), name)
	}
	for _, name := range c.top.Streams {
		s, err := c.js.Stream(ctx, name)
		if err != nil {
			up = 0
			continue
		}
		info, err := s.Info(ctx)
		if err != nil {
			up = 0
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.streamMsgs, prometheus.GaugeValue, float64(info.State.Msgs), name)
		ch <- prometheus.MustNewConstMetric(c.streamBytes, prometheus.GaugeValue, float64(info.State.Bytes), name)
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
}
