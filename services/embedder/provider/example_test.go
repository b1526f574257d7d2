package provider_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
)

func ExampleNew() {
	e, err := provider.New(provider.Config{Provider: "local", Dimension: 8}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	e = provider.WithRetry(e, provider.DefaultRetryPolicy())
	vecs, err := e.Embed(context.Background(), []string{"Hello, world", "你好，世界"}, provider.Document)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(vecs), len(vecs[0]))
	// Output: 2 8
}

func ExampleError() {
	// How a caller decides what to do with a failure.
	err := fmt.Errorf("embed task 42: %w", &provider.Error{
		Provider: "openai", Kind: provider.ErrRateLimited, StatusCode: 429, RetryAfter: 20 * time.Second})
	switch {
	case errors.Is(err, provider.ErrInvalidKey), errors.Is(err, provider.ErrBadInput):
		fmt.Println("fail the task")
	case provider.Retryable(err):
		d, _ := provider.RetryAfter(err)
		fmt.Println("try again in", d)
	}
	fmt.Println(err)
	// Output:
	// try again in 20s
	// embed task 42: openai rate limited (HTTP 429), retry after 20s
}
