package ingestsink

import "github.com/pdfpipe/pdfpipe/pkg/envconf"

// Settings are what the ingest-sink command reads from its environment
// (its flags override them): the one description it reads, its -h lists
// and the README's table is generated from.
var Settings = envconf.Settings{
	envconf.String("INGEST_SINK_ADDR", "127.0.0.1:50051",
		"ingest-sink's listen address (`:50051` for every interface; the image sets that); `-addr` overrides it"),
	envconf.String("INGEST_SINK_OUT", "", "ingest-sink's JSONL output file, appended to; unset or `-`: stdout; `-out` overrides it"),
	// Declared as pkg/pipeline's DimensionSetting is, which this module
	// does not import (it would bring NATS into the sink): the README
	// generator refuses the two if they ever differ.
	envconf.Int("EMBEDDING_DIMENSION", DefaultDimension,
		"every vector's length: the backend stores `vector(384)`; a model that cannot give it is refused at start, "+
			"and the reference sink refuses vectors of another length"),
}
