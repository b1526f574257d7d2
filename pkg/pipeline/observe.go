package pipeline

import "github.com/pdfpipe/pdfpipe/pkg/metrics"

// MetricsTopology is what the JetStream metrics collector reads: each
// stage's durable consumer on Stream, and the sizes of both streams.
func MetricsTopology() metrics.Topology {
	top := metrics.Topology{Stream: Stream, Streams: []string{Stream, VectorStream}}
	for _, st := range []Stage{Fetch, Parse, Embed, Ingest} {
		top.Consumers = append(top.Consumers, metrics.Consumer{Stage: string(st), Durable: st.Durable()})
	}
	return top
}
