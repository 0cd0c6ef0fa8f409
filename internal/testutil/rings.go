package testutil

import (
	"testing"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/producer"
)

// OpenWriter opens ring name in dir for writing with opts (opts.Dir is set
// to dir) and removes the ring when the test ends.
func OpenWriter(t testing.TB, dir, name string, opts producer.Options) *producer.Writer {
	t.Helper()
	opts.Dir = dir
	w, err := producer.Open(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Remove() })
	return w
}

// OpenReader opens ring name in dir for reading with opts (opts.Dir is set
// to dir) and closes the reader when the test ends.
func OpenReader(t testing.TB, dir, name string, opts consumer.Options) *consumer.Reader {
	t.Helper()
	opts.Dir = dir
	r, err := consumer.Open(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
