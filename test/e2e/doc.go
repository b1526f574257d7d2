// Package e2e holds the end-to-end tests: the whole pipeline in one test
// process against real parts — redis-server, an in-process JetStream
// server, versitygw as the S3 server, the reference IngestService on
// loopback gRPC — with only the paid embedding API faked.
package e2e
