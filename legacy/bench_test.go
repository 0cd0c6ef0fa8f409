package legacy_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/pattern"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/legacy"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// The comparison: a writer following the old write sequence (or a
// framering ring writer, for (c)) at full speed and at 1 kHz, in one
// process; a reader in another: (a) the old reader sequence, (b)
// framering's legacy Reader, (c) a framering consumer on a ring. Every
// frame read is checked with pattern.Verify: a frame that mixes two frames
// fails its checksum and counts as a torn frame accepted.
//
// Environment: LEGACY_BENCH_SECONDS (default 1) per run, LEGACY_BENCH_SIZE
// (default 640x404x3, the old example's size).

const (
	benchW, benchH, benchC = 640, 404, 3
)

func init() {
	testutil.Helper("legacy-bench-writer", benchWriter)
	testutil.Helper("legacy-bench-reader", benchReader)
}

type benchEnv struct {
	dir, name, kind string
	rate            float64
	dur             time.Duration
	w, h, c         int
}

func getBenchEnv() benchEnv {
	e := benchEnv{dir: os.Getenv("LB_DIR"), name: os.Getenv("LB_NAME"), kind: os.Getenv("LB_KIND"), w: benchW, h: benchH, c: benchC}
	e.rate, _ = strconv.ParseFloat(os.Getenv("LB_RATE"), 64)
	secs, _ := strconv.ParseFloat(os.Getenv("LB_SECONDS"), 64)
	e.dur = time.Duration(secs * float64(time.Second))
	if s := os.Getenv("LB_SIZE"); s != "" {
		e.w, e.h, e.c, _ = ring.ParseSize(s)
	}
	return e
}

// benchFrames returns 4 buffers holding frames 0..3 of the pattern; frame
// n is buffer n%4 with n written into its first 8 bytes (outside the
// checksum), so preparing a frame costs nothing and consecutive frames
// differ in every byte.
func benchFrames(n int) [4][]byte {
	var b [4][]byte
	for i := range b {
		b[i] = make([]byte, n)
		pattern.Fill(b[i], uint64(i))
	}
	return b
}

func benchWriter() int {
	e := getBenchEnv()
	frames := benchFrames(e.w * e.h * e.c)
	var write func(n uint64, px []byte) error
	var closeFn func() error
	switch e.kind {
	case "ring":
		pw, err := producer.Open(e.name, producer.Options{Dir: e.dir, MaxWidth: e.w, MaxHeight: e.h, MaxChannels: e.c})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		info := ring.FrameInfo{Width: e.w, Height: e.h, Channels: e.c, Format: ring.FormatForChannels(e.c)}
		write = func(_ uint64, px []byte) error { _, err := pw.Publish(info, px); return err }
		closeFn = pw.Remove
	default:
		ow, err := legacy.NewOldWriter(e.dir, e.name, e.w, e.h, e.c)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		write = func(_ uint64, px []byte) error { ow.Write(px, 0); return nil }
		closeFn = ow.Remove
	}
	fmt.Println("ready")
	var period int64
	if e.rate > 0 {
		period = int64(float64(time.Second) / e.rate)
	}
	start := ring.Now()
	end := start + int64(e.dur)
	var n uint64
	for next := start; ; {
		now := ring.Now()
		if now >= end {
			break
		}
		if period > 0 && now < next {
			time.Sleep(time.Duration(next - now))
			continue
		}
		next += period
		n++
		px := frames[n%4]
		binary.LittleEndian.PutUint64(px, n)
		if err := write(n, px); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	fmt.Printf("wrote %d\n", n)
	os.Stdout.Sync()
	// Stay up (object in place) until the reader is done.
	time.Sleep(time.Duration(1<<62 - 1))
	if closeFn() != nil { // not reached: the test kills us
		return 1
	}
	return 0
}

type tally struct{ reads, distinct, torn, dropped, last uint64 }

func (t *tally) add(px []byte) {
	t.reads++
	n, err := pattern.Verify(px)
	if err != nil {
		t.torn++
		return
	}
	if n != t.last {
		t.distinct++
		t.last = n
	}
}

func benchReader() int {
	e := getBenchEnv()
	ctx, cancel := context.WithTimeout(context.Background(), e.dur)
	defer cancel()
	var t tally
	buf := make([]byte, e.w*e.h*e.c)
	switch e.kind {
	case "old":
		var o *legacy.OldReader
		for o == nil {
			var err error
			if o, err = legacy.NewOldReader(e.dir, e.name, e.w, e.h, e.c); err != nil {
				time.Sleep(time.Millisecond)
			}
		}
		defer o.Close()
		for ctx.Err() == nil {
			if _, err := o.Read(ctx, buf); err != nil {
				break
			}
			t.add(buf)
			time.Sleep(time.Millisecond) // the application's cv2.waitKey(1)
		}
	case "safe":
		r, err := legacy.NewReader(e.dir, e.name, legacy.ReaderOptions{NoCompare: os.Getenv("LB_NOCOMPARE") != ""})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer r.Close()
		for {
			f, err := r.Read(ctx, buf)
			if err != nil {
				break
			}
			t.add(f.Pixels)
		}
		t.dropped = r.Stats().Torn // copies refused, reported separately
	case "ring":
		r, err := consumer.OpenWait(ctx, e.name, consumer.Options{Dir: e.dir})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer r.Close()
		for {
			f, err := r.Read(ctx, buf)
			if err != nil {
				break
			}
			t.add(f.Data)
		}
		t.dropped = r.Stats().Dropped()
	}
	fmt.Printf("result %d %d %d %d\n", t.reads, t.distinct, t.torn, t.dropped)
	return 0
}

func BenchmarkLegacyCompare(b *testing.B) {
	secs := os.Getenv("LEGACY_BENCH_SECONDS")
	if secs == "" {
		secs = "1"
	}
	size := os.Getenv("LEGACY_BENCH_SIZE")
	for _, rate := range []struct {
		name string
		hz   string
	}{{"full", "0"}, {"1kHz", "1000"}} {
		for _, rd := range []struct{ name, writer, reader string }{
			{"old-reader", "legacy", "old"},
			{"legacy-reader", "legacy", "safe"},
			{"ring-reader", "ring", "ring"},
		} {
			b.Run(rate.name+"/"+rd.name, func(b *testing.B) {
				dir := testutil.ShmDir(b)
				var sum tally
				var written, runs uint64
				for b.Loop() {
					name := testutil.Name(b)
					env := []string{"LB_DIR=" + dir, "LB_NAME=" + name, "LB_RATE=" + rate.hz, "LB_SECONDS=" + secs, "LB_SIZE=" + size}
					w := testutil.Start(b, "legacy-bench-writer", append(env, "LB_KIND="+rd.writer)...)
					if _, err := w.Expect("ready", 30*time.Second); err != nil {
						b.Fatal(err)
					}
					r := testutil.Start(b, "legacy-bench-reader", append(env, "LB_KIND="+rd.reader)...)
					line, err := r.Expect("result ", 60*time.Second)
					if err != nil {
						b.Fatal(err)
					}
					var t tally
					fmt.Sscanf(line, "result %d %d %d %d", &t.reads, &t.distinct, &t.torn, &t.dropped)
					wl, err := w.Expect("wrote ", 60*time.Second)
					if err != nil {
						b.Fatal(err)
					}
					var n uint64
					fmt.Sscanf(wl, "wrote %d", &n)
					w.Kill()
					r.Wait(10 * time.Second)
					sum.reads += t.reads
					sum.distinct += t.distinct
					sum.torn += t.torn
					sum.dropped += t.dropped
					written += n
					runs++
				}
				per := func(v uint64) float64 { return float64(v) / float64(runs) }
				b.ReportMetric(per(written), "written/run")
				b.ReportMetric(per(sum.reads), "read/run")
				b.ReportMetric(per(sum.distinct), "distinct/run")
				b.ReportMetric(per(sum.torn), "torn_accepted/run")
				if sum.reads > 0 {
					b.ReportMetric(100*float64(sum.torn)/float64(sum.reads), "torn_%")
				}
				b.ReportMetric(per(sum.dropped), "refused_or_dropped/run")
			})
		}
	}
}
