package pipeline

import "github.com/pdfpipe/pdfpipe/pkg/envconf"

// DimensionSetting is EMBEDDING_DIMENSION, the length of every vector the
// pipeline carries: declared once here for the gateway, the embedder and
// `pdfpipe run`, which all read it. (tools/ingestsink, a module of its
// own, declares it alike; the README generator refuses two declarations
// that differ.)
var DimensionSetting = envconf.Int("EMBEDDING_DIMENSION", 384,
	"every vector's length: the backend stores `vector(384)`; a model that cannot give it is refused at start, "+
		"and the reference sink refuses vectors of another length")
