package source

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// maxErrorBody is how much of an error response is read to find an S3-style
// <Error><Code> in it.
const maxErrorBody = 4 << 10

func (o *Opener) openHTTP(ctx context.Context, u *url.URL) (Object, error) {
	name := redact(u)
	origin := redactHost(u)
	rctx, m, cancel := o.start(ctx)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		m.stop()
		cancel(nil)
		return Object{}, fmt.Errorf("get %s: malformed request: %w", name, ErrBadURL)
	}
	req.Header.Set("Accept", "application/pdf, */*;q=0.5")

	m.begin()
	resp, err := o.http.Do(req)
	m.end(0)
	if err != nil {
		m.stop()
		cancel(nil)
		return Object{}, failure(ctx, rctx, "get", name, origin, err)
	}
	fail := func(err error) (Object, error) {
		m.stop()
		resp.Body.Close()
		cancel(nil)
		return Object{}, err
	}
	if rctx.Err() != nil {
		return fail(failure(ctx, rctx, "get", name, origin, rctx.Err()))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		m.begin()
		head, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		m.end(len(head))
		return fail(httpStatusError(name, resp.StatusCode, head))
	}
	if resp.ContentLength > o.maxBytes {
		return fail(o.tooLarge(name, resp.ContentLength))
	}
	ct := mediaType(resp.Header.Get("Content-Type"))
	body := &guardedBody{
		src:         &meteredReader{rc: resp.Body, m: m},
		max:         o.maxBytes,
		name:        name,
		contentType: ct,
		mapErr: func(err error) error {
			return failure(ctx, rctx, "read", name, origin, err)
		},
		onClose: func() { cancel(nil) },
	}
	return Object{Body: body, Size: resp.ContentLength, ContentType: ct}, nil
}

// s3Error is the XML error document S3 and compatible servers send (also
// for expired presigned URLs). Only Code is used, and only when it is a
// code S3 defines (knownCode): Message and the other fields are the
// server's words (and may identify credentials).
type s3Error struct {
	Code string
}

// httpStatusError maps a non-2xx status to a StatusError with a reason a
// person can act on. Nothing of the body is quoted but a known S3 error
// code.
func httpStatusError(name string, status int, body []byte) *StatusError {
	var x s3Error
	_ = xml.Unmarshal(body, &x) // not XML: no code, the status decides
	e := &StatusError{URL: name, StatusCode: status, Code: knownCode(x.Code)}
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
	case status >= 300 && status < 400:
		e.Kind, e.Reason = ErrBadURL, "redirect without a usable Location"
	default:
		e.Kind, e.Reason = ErrBadURL, "request rejected: check the URL"
	}
	return e
}
