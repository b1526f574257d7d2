package source

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxErrorBody is how much of an error response is read to find an S3-style
// <Error><Code> in it.
const maxErrorBody = 4 << 10

func (o *Opener) openHTTP(ctx context.Context, u *url.URL) (Object, error) {
	name := redact(u)
	rctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return Object{}, fmt.Errorf("get %s: malformed request: %w", name, ErrBadURL)
	}
	req.Header.Set("Accept", "application/pdf, */*;q=0.5")

	w := newWatchdog(o.timeout, cancel)
	resp, err := o.http.Do(req)
	if err != nil {
		w.disarm()
		cancel()
		return Object{}, o.failure(ctx, "get", name, w, err)
	}
	fail := func(err error) (Object, error) {
		w.disarm()
		resp.Body.Close()
		cancel()
		return Object{}, err
	}
	if w.disarm() {
		return fail(o.failure(ctx, "get", name, w, nil))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		w.arm()
		head, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return fail(httpStatusError(name, resp.StatusCode, head))
	}
	if resp.ContentLength > o.maxBytes {
		return fail(o.tooLarge(name, resp.ContentLength))
	}
	ct := resp.Header.Get("Content-Type")
	body := &guardedBody{
		src:         &watchedReader{rc: resp.Body, w: w},
		max:         o.maxBytes,
		name:        name,
		contentType: ct,
		mapErr: func(err error) error {
			return o.failure(ctx, "read", name, w, err)
		},
		onClose: cancel,
	}
	return Object{Body: body, Size: resp.ContentLength, ContentType: ct}, nil
}

// s3Error is the XML error document S3 and compatible servers send (also
// for expired presigned URLs). Only Code and Message are used: other fields
// (StringToSign, CanonicalRequest, AWSAccessKeyId) may identify credentials.
type s3Error struct {
	Code    string
	Message string
}

// httpStatusError maps a non-2xx status to a StatusError with a reason a
// person can act on.
func httpStatusError(name string, status int, body []byte) *StatusError {
	var x s3Error
	_ = xml.Unmarshal(body, &x) // not XML: no code, the status decides
	e := &StatusError{URL: name, StatusCode: status, Code: oneLine(x.Code, 64)}
	switch {
	case status == http.StatusNotFound:
		e.Kind, e.Reason = ErrNotFound, "not found: check the URL, or the file was deleted"
	case status == http.StatusGone:
		e.Kind, e.Reason = ErrNotFound, "gone: the file was removed"
	case status == http.StatusUnauthorized:
		e.Kind, e.Reason = ErrForbidden, "authentication required: the URL carries no valid credentials"
	case status == http.StatusForbidden:
		e.Kind, e.Reason = ErrForbidden, "URL expired or forbidden: request a fresh download link"
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests:
		e.Kind, e.Reason = ErrTransient, "server busy, retry later"
	case status >= 500:
		e.Kind, e.Reason = ErrTransient, "server error, retry later"
	default:
		e.Kind, e.Reason = ErrBadURL, "request rejected: check the URL"
	}
	if msg := oneLine(x.Message, 200); msg != "" {
		e.Reason += " (" + msg + ")"
	}
	return e
}

// oneLine trims s to one line of at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "..."
	}
	return s
}
