// Package cognicore is the generated Go code for cognicore.proto, the gRPC
// contract between pdfpipe and the product's Go backend: IngestService (served
// by the backend, called by the ingester), APIKeyService, EmbeddingService and
// the legacy VectorizerService (served by the gateway).
//
// Do not edit the *.pb.go files: change cognicore.proto and run `make generate`
// in the proto directory.
package cognicore
