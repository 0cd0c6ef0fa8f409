package producer_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/segfile"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// A FIFO, socket or directory under a ring's name (any local user can
// plant one in /dev/shm) gives a clear error at once to every open path:
// writer, reader, OpenWait (recv --wait), and segfile (ls, stat, the
// metrics exporter). Before, open(2) of a FIFO blocked until someone
// opened its other end.
func TestNonRegularUnderRingName(t *testing.T) {
	dir := testutil.ShmDir(t)
	plant := map[string]func(path string) error{
		"FIFO": func(p string) error { return syscall.Mkfifo(p, 0o600) },
		"socket": func(p string) error {
			l, err := net.Listen("unix", p)
			if err == nil {
				t.Cleanup(func() { l.Close() })
			}
			return err
		},
		"directory": func(p string) error { return os.Mkdir(p, 0o700) },
	}
	for what, mk := range plant {
		t.Run(what, func(t *testing.T) {
			name := testutil.Name(t)
			if err := mk(ring.Path(dir, name)); err != nil {
				t.Fatal(err)
			}
			opens := map[string]func() error{
				"producer.Open": func() error {
					w, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 64})
					if err == nil {
						w.Close()
					}
					return err
				},
				"consumer.Open": func() error {
					r, err := consumer.Open(name, consumer.Options{Dir: dir})
					if err == nil {
						r.Close()
					}
					return err
				},
				"consumer.OpenWait": func() error {
					r, err := consumer.OpenWait(context.Background(), name, consumer.Options{Dir: dir})
					if err == nil {
						r.Close()
					}
					return err
				},
				"segfile.Open": func() error {
					f, err := segfile.Open(dir, name, shm.Trust{GroupWrite: true, OtherOwner: true})
					if err == nil {
						f.Close()
					}
					return err
				},
			}
			for op, open := range opens {
				done := make(chan error, 1)
				go func() { done <- open() }()
				err := testutil.Receive(t, done, op+" of a "+what)
				if !errors.Is(err, ring.ErrUnsafeFile) || !strings.Contains(err.Error(), "not a regular file") {
					t.Errorf("%s of a %s = %v, want ErrUnsafeFile: not a regular file", op, what, err)
				}
			}
		})
	}
}
