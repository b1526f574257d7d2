// Package proto holds pdfpipe's protocol definitions (cognicore/cognicore.proto),
// the script that generates their Go code (generate.sh, make generate) and the
// test that fails when the committed generated code is stale.
//
// The generated Go API lives in the cognicore sub-package.
package proto
