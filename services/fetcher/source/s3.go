package source

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
)

// newS3Client builds the minio client. Retries inside the client are off:
// a transient failure goes back to the caller, whose queue retries with
// backoff.
func newS3Client(cfg S3Config) (*minio.Client, error) {
	endpoint, secure := cfg.Endpoint, cfg.Secure
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("s3 endpoint %q: want host:port or http(s)://host:port", redactRaw(endpoint))
		}
		endpoint, secure = u.Host, u.Scheme == "https"
	}
	c, err := minio.New(endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessID, cfg.AccessKey, ""),
		Secure:     secure,
		Region:     cfg.Region,
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 endpoint %q: %w", envconf.Redact(endpoint), envconf.RedactError(err))
	}
	return c, nil
}

// openS3 opens path ("bucket/key", or "/key" for the default bucket).
func (o *Opener) openS3(ctx context.Context, path string) (Object, error) {
	bucket, key, _ := strings.Cut(path, "/")
	if bucket == "" {
		bucket = o.defaultBucket
	}
	name := "s3://" + bucket + "/" + key
	switch {
	case o.s3 == nil:
		return Object{}, fmt.Errorf("get %s: no S3 endpoint configured (BUCKET_ENDPOINT): %w", name, ErrBadURL)
	case bucket == "":
		return Object{}, fmt.Errorf("get %s: no bucket in URL and no default bucket (BUCKET_NAME): %w", name, ErrBadURL)
	case key == "":
		return Object{}, fmt.Errorf("get %s: no object key in URL: %w", name, ErrBadURL)
	}

	rctx, m, cancel := o.start(ctx)
	m.begin()
	obj, err := o.s3.GetObject(rctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		m.stop()
		cancel(nil)
		return Object{}, s3Failure(ctx, rctx, name, err)
	}
	info, err := obj.Stat() // sends the GET; the body is read from the same response
	m.end(0)
	fail := func(err error) (Object, error) {
		m.stop()
		obj.Close()
		cancel(nil)
		return Object{}, err
	}
	if err != nil {
		return fail(s3Failure(ctx, rctx, name, err))
	}
	if rctx.Err() != nil {
		return fail(failure(ctx, rctx, "get", name, "", rctx.Err()))
	}
	if info.Size > o.maxBytes {
		return fail(o.tooLarge(name, info.Size))
	}
	ct := mediaType(info.ContentType)
	body := &guardedBody{
		src:         &meteredReader{rc: obj, m: m},
		max:         o.maxBytes,
		name:        name,
		contentType: ct,
		mapErr: func(err error) error {
			return s3Failure(ctx, rctx, name, err)
		},
		onClose: func() { cancel(nil) },
	}
	return Object{Body: body, Size: info.Size, ContentType: ct}, nil
}

// s3Failure maps a minio error: S3 error codes decide when present,
// anything else (network, timeouts) is classified as for HTTP. The
// server's message is never quoted, its code only when S3 defines it.
func s3Failure(ctx, rctx context.Context, name string, err error) error {
	var er minio.ErrorResponse
	if rctx.Err() != nil || !errors.As(err, &er) || (er.Code == "" && er.StatusCode == 0) {
		return failure(ctx, rctx, "get", name, "", err)
	}
	e := &StatusError{URL: name, StatusCode: er.StatusCode, Code: knownCode(er.Code)}
	switch er.Code {
	case "NoSuchKey":
		e.Kind, e.Reason = ErrNotFound, "no such key: check the object key"
	case "NoSuchBucket":
		e.Kind, e.Reason = ErrNotFound, "no such bucket: check the bucket name"
	case "InvalidAccessKeyId", "XAdminUserNotFound": // versitygw answers 404 XAdminUserNotFound
		e.Kind, e.Reason = ErrForbidden, "access key unknown to the server: check BUCKET_ACCESS_ID"
	case "SignatureDoesNotMatch":
		e.Kind, e.Reason = ErrForbidden, "signature mismatch: check BUCKET_ACCESS_KEY"
	case "AccessDenied", "AllAccessDisabled", "AccountProblem", "ExpiredToken", "InvalidToken":
		e.Kind, e.Reason = ErrForbidden, "access denied: check the BUCKET_* credentials and the bucket policy"
	case "InvalidBucketName", minio.XMinioInvalidObjectName, "KeyTooLongError":
		e.Kind, e.Reason = ErrBadURL, "invalid bucket or key name"
	default:
		switch s := er.StatusCode; {
		case s == http.StatusNotFound:
			e.Kind, e.Reason = ErrNotFound, "not found"
		case s == http.StatusUnauthorized || s == http.StatusForbidden:
			e.Kind, e.Reason = ErrForbidden, "access denied: check the BUCKET_* credentials"
		case s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests:
			e.Kind, e.Reason = ErrBadURL, "request rejected"
		default:
			e.Kind, e.Reason = ErrTransient, "server error or busy, retry later"
		}
	}
	return e
}
