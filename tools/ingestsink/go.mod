module github.com/pdfpipe/pdfpipe/tools/ingestsink

go 1.26.0

require (
	github.com/pdfpipe/pdfpipe/pkg v0.0.0-00010101000000-000000000000
	github.com/pdfpipe/pdfpipe/proto v0.0.0-00010101000000-000000000000
	golang.org/x/sync v0.25.0
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
)

require (
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260928230214-8a89bd6388cc // indirect
)

replace github.com/pdfpipe/pdfpipe/proto => ../../proto

replace github.com/pdfpipe/pdfpipe/pkg => ../../pkg
