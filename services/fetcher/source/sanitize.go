package source

import "strings"

// s3Codes are the error codes S3 and compatible servers define that a
// reason may name. A code outside this set is dropped: the body of an
// error response is the remote server's text, and a server that is not S3
// could put anything in <Code>.
var s3Codes = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range strings.Fields(`AccessDenied AccountProblem AllAccessDisabled
		AuthorizationHeaderMalformed AuthorizationQueryParametersError BadDigest
		EntityTooLarge ExpiredToken InternalError InvalidAccessKeyId InvalidArgument
		InvalidBucketName InvalidObjectName InvalidObjectState InvalidRange InvalidRequest
		InvalidSecurity InvalidToken KeyTooLongError MethodNotAllowed MissingSecurityHeader
		NoSuchBucket NoSuchKey NoSuchVersion NotImplemented PreconditionFailed
		RequestTimeTooSkewed RequestTimeout ServiceUnavailable SignatureDoesNotMatch
		SlowDown TemporaryRedirect PermanentRedirect XAdminUserNotFound
		XMinioInvalidObjectName XMinioServerNotInitialized`) {
		m[c] = true
	}
	return m
}()

// knownCode returns code when it is one of s3Codes, else "".
func knownCode(code string) string {
	if s3Codes[strings.TrimSpace(code)] {
		return strings.TrimSpace(code)
	}
	return ""
}

// mediaType returns the media type of a Content-Type header ("text/html"
// of "text/html; charset=utf-8"), or "" when it is not a plain, short
// type/subtype: the header is the remote server's text.
func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if len(mt) > 64 || strings.Count(mt, "/") != 1 {
		return ""
	}
	for _, r := range mt {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("/+-.", r)) {
			return ""
		}
	}
	return mt
}
