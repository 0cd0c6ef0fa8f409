package legacy_test

import (
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/legacy"
)

// A sender that rewrites the header during every copy (frame_valid stays
// 1, the timestamp never holds still) makes every copy torn: Read still
// honours its deadline and Close, and does not spin (it waits a poll every
// tornBound copies).
func TestReaderHostileSenderHonoursDeadline(t *testing.T) {
	dir := testutil.ShmDir(t)
	leg := "mmaptest_" + testutil.Name(t)
	path := filepath.Join(dir, leg)
	const w, h, c = 64, 64, 3
	writeObject(t, path, 24+w*h*c, w, h, c)
	f, err := shm.Open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := shm.Map(f, 24+w*h*c, true)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unmap()
	r, err := legacy.NewReader(dir, leg, legacy.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ts := uint64(time.Now().UnixMilli())
	r.SetAfterCopy(func() {
		ts++
		binary.LittleEndian.PutUint64(m.Bytes()[12:], ts)
	})
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := r.Read(ctx, nil)
		done <- err
	}()
	if err := testutil.Receive(t, done, "Read with a sender rewriting every frame"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read = %v, want DeadlineExceeded", err)
	}
	st := r.Stats()
	if st.Frames != 0 || st.Torn == 0 || st.Polls < st.Torn/legacy.TornBound {
		t.Errorf("stats %+v: want torn copies, a poll after every %d of them, no frame", st, legacy.TornBound)
	}
	go func() {
		_, err := r.Read(context.Background(), nil)
		done <- err
	}()
	testutil.Eventually(t, "more torn copies", func() bool { return r.Stats().Torn > st.Torn })
	r.Close()
	if err := testutil.Receive(t, done, "Read at Close"); !errors.Is(err, legacy.ErrClosed) {
		t.Fatalf("Read at Close = %v, want ErrClosed", err)
	}
}
