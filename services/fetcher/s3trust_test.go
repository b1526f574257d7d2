package fetcher_test

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/services/fetcher"
	"github.com/pdfpipe/pdfpipe/services/fetcher/source"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// TestFetchTrustsS3Endpoint: the configured S3 endpoint (versitygw on
// loopback) is trusted without any allow-list: s3:// URLs and presigned
// http URLs to it are fetched, while another loopback port is refused.
func TestFetchTrustsS3Endpoint(t *testing.T) {
	s3 := testenv.StartS3(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := minio.New(s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.MakeBucket(ctx, "docs", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	o := newOrigin(t) // only for its PDF bytes: not allowed, so not reachable
	if _, err := admin.PutObject(ctx, "docs", "in/a.pdf", bytes.NewReader(o.pdf), int64(len(o.pdf)),
		minio.PutObjectOptions{ContentType: "application/pdf"}); err != nil {
		t.Fatal(err)
	}
	presigned, err := admin.PresignedGetObject(ctx, "docs", "in/a.pdf", 15*time.Minute, url.Values{})
	if err != nil {
		t.Fatal(err)
	}

	e := newEnv(t)
	startFetcher(t, e, nil, func(c *fetcher.Config) {
		c.S3 = source.S3Config{Endpoint: s3.Endpoint, AccessID: s3.AccessKey, AccessKey: s3.SecretKey}
	})
	e.submit(t, "s3-url", "s3://docs/in/a.pdf")
	e.expectFetched(t, "s3-url", o.pdf)
	e.submit(t, "presigned", presigned.String())
	e.expectFetched(t, "presigned", o.pdf)

	e.submit(t, "elsewhere", o.URL+"/good.pdf")
	st := e.WaitTerminal(t, "elsewhere")
	if st.State != status.Failed || !strings.Contains(st.Error, "127.0.0.1 is loopback") {
		t.Errorf("another loopback port: got %s (%s), want refused as loopback", st.State, st.Error)
	}
	if n := o.hitsOf("/good.pdf"); n != 0 {
		t.Errorf("the server not allowed got %d requests, want 0", n)
	}
}
