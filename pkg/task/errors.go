package task

import "errors"

// Every error returned by Parse wraps exactly one of these sentinels (match
// them with errors.Is). All of them are permanent: the same bytes will never
// parse, so the entry belongs in the dead-letter list with the error text as
// its reason.
var (
	// ErrMalformed: the entry is not JSON, not a JSON object, or a known
	// field has a type that cannot be used (for example DocID as an object).
	ErrMalformed = errors.New("malformed task")
	// ErrMissingID: neither task_id nor DocID is present and non-empty.
	ErrMissingID = errors.New("task has no task_id or DocID")
	// ErrBadID: an id is longer than MaxIDLen bytes or contains control
	// characters.
	ErrBadID = errors.New("bad task id")
	// ErrMissingURL: neither URL nor s3_url is present and non-empty.
	ErrMissingURL = errors.New("task has no URL or s3_url")
	// ErrUnsupportedScheme: the URL is not http, https or s3.
	ErrUnsupportedScheme = errors.New("unsupported URL scheme")
	// ErrBadURL: an http(s) URL that does not parse or has no host.
	ErrBadURL = errors.New("bad URL")
	// ErrBadS3URL: an s3 URL that is not s3://bucket/key.
	ErrBadS3URL = errors.New("bad s3 URL")
)
