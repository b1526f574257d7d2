package testenv

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func TestStartS3(t *testing.T) {
	s := StartS3(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	client := func(t *testing.T, access, secret string) *minio.Client {
		t.Helper()
		c, err := minio.New(s.Endpoint, &minio.Options{
			Creds:      credentials.NewStaticV4(access, secret, ""),
			Region:     "us-east-1",
			MaxRetries: 1,
		})
		if err != nil {
			t.Fatalf("minio.New: %v", err)
		}
		return c
	}

	t.Run("bucket and object round trip", func(t *testing.T) {
		c := client(t, s.AccessKey, s.SecretKey)
		if err := c.MakeBucket(ctx, "docs", minio.MakeBucketOptions{}); err != nil {
			t.Fatalf("MakeBucket: %v", err)
		}
		want := []byte("%PDF-1.7 test object")
		if _, err := c.PutObject(ctx, "docs", "a/b.pdf", bytes.NewReader(want), int64(len(want)),
			minio.PutObjectOptions{ContentType: "application/pdf"}); err != nil {
			t.Fatalf("PutObject: %v", err)
		}
		obj, err := c.GetObject(ctx, "docs", "a/b.pdf", minio.GetObjectOptions{})
		if err != nil {
			t.Fatalf("GetObject: %v", err)
		}
		defer obj.Close()
		got, err := io.ReadAll(obj)
		if err != nil {
			t.Fatalf("read object: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})

	t.Run("wrong secret rejected", func(t *testing.T) {
		c := client(t, s.AccessKey, s.SecretKey+"x")
		_, err := c.ListBuckets(ctx)
		if err == nil {
			t.Fatal("got no error listing buckets with a wrong secret, want one")
		}
		if code := minio.ToErrorResponse(err).Code; code != "SignatureDoesNotMatch" {
			t.Errorf("got code %q (%v), want SignatureDoesNotMatch", code, err)
		}
	})
}

func TestStartS3CleanupStopsServer(t *testing.T) {
	var endpoint string
	t.Run("server", func(t *testing.T) {
		endpoint = StartS3(t).Endpoint
		conn, err := net.DialTimeout("tcp", endpoint, time.Second)
		if err != nil {
			t.Fatalf("dial running server: %v", err)
		}
		conn.Close()
	})
	if t.Failed() {
		return
	}
	conn, err := net.DialTimeout("tcp", endpoint, time.Second)
	if err == nil {
		conn.Close()
		t.Errorf("got a connection to %s after cleanup, want the server stopped", endpoint)
	}
}
