package parser_test

import (
	"runtime/debug"
	"testing"

	"github.com/pdfpipe/pdfpipe/services/parser"
)

func TestTuneGC(t *testing.T) {
	was := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(was) })
	for _, tc := range []struct {
		gogc string
		want int
	}{
		{gogc: "", want: parser.GCPercent},
		{gogc: "80", want: 100}, // the runtime applied GOGC itself: left alone
		{gogc: "off", want: 100},
	} {
		debug.SetGCPercent(100)
		parser.TuneGC(func(key string) string {
			if key == "GOGC" {
				return tc.gogc
			}
			return ""
		})
		if got := debug.SetGCPercent(100); got != tc.want {
			t.Errorf("GOGC=%q: collector at %d %%, want %d", tc.gogc, got, tc.want)
		}
	}
}
