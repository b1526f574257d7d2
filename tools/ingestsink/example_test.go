package ingestsink_test

import (
	"context"
	"fmt"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/pdfpipe/pdfpipe/proto/cognicore"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
)

// A sink served in-process; every stored chunk is written to stdout as JSONL.
func ExampleSink() {
	sink := ingestsink.New(ingestsink.Options{Dimension: 2, Output: os.Stdout})
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	sink.Register(srv)
	go srv.Serve(lis)
	defer srv.Stop()

	conn, err := grpc.NewClient("passthrough:///sink",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()

	client := cognicore.NewIngestServiceClient(conn)
	chunk := &cognicore.TextChunk{ChunkId: "c1", FileId: "doc-1", ChunkText: "hello", EmbeddingVector: []float32{0.5, 1}}
	for range 2 {
		resp, err := client.IngestSingleChunk(context.Background(), chunk)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(resp.GetSuccess(), resp.GetMessage())
	}
	// Output:
	// {"type":"chunk","chunk_id":"c1","file_id":"doc-1","chunk_index":0,"chapter":"","chapter_num":"","chunk_text":"hello","page_start":0,"page_end":0,"embedding_vector":[0.5,1]}
	// true finish 1 chunks
	// false chunk 0 (c1): ERROR: duplicate key value violates unique constraint "chunks_pkey" (SQLSTATE 23505)
}
