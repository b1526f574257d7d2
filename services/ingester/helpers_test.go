package ingester_test

import (
	"testing"

	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
)

// env is the shared stage test harness; methods are promoted from it.
type env struct{ *stagetest.Env }

func newEnv(t testing.TB) *env { return &env{stagetest.New(t)} }
