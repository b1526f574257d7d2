// Package testenv starts real servers for tests and provides the polling
// helper the tests use instead of sleeping.
//
// Everything here takes a testing.TB, fails the test with a message that says
// what to install or what went wrong, and registers t.Cleanup to stop what it
// started, so a test only writes:
//
//	url := testenv.StartRedis(t) // "redis://127.0.0.1:N"
//	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
//		// return nil once the condition holds
//	})
//
// StartRedis runs the redis-server binary found in PATH (override it with
// the REDIS_SERVER_BIN environment variable) with persistence off and its
// working directory in t.TempDir().
package testenv
