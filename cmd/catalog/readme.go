package catalog

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
)

// The README's configuration table sits between these lines.
const (
	BeginTable = "<!-- settings table: generated from the declarations by `go run ./cmd/settingsdoc`; do not edit by hand -->"
	EndTable   = "<!-- end of settings table -->"
)

// Table is the README's configuration table for Binaries.
func Table() (string, error) { return envconf.Table(Binaries(), Aliases()...) }

// Splice returns readme with the text between BeginTable and EndTable
// replaced by table.
func Splice(readme []byte, table string) ([]byte, error) {
	begin := bytes.Index(readme, []byte(BeginTable+"\n"))
	end := bytes.Index(readme, []byte(EndTable))
	if begin < 0 || end < begin {
		return nil, fmt.Errorf("README: no %q … %q lines around the configuration table", BeginTable, EndTable)
	}
	if bytes.Count(readme, []byte(BeginTable)) != 1 || bytes.Count(readme, []byte(EndTable)) != 1 {
		return nil, errors.New("README: the settings table markers appear more than once")
	}
	begin += len(BeginTable) + 1
	var out bytes.Buffer
	out.Write(readme[:begin])
	out.WriteString(table)
	out.Write(readme[end:])
	return out.Bytes(), nil
}
