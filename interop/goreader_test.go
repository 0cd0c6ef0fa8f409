package interop_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/pattern"
	"github.com/framering/framering/ring"
)

// goReaderEnv, when set, makes the test binary the Go library's view
// reader instead of running tests (TestMain).
const goReaderEnv = "FRAMERING_INTEROP_GO_READER"

// goReaderMain is `recv --verify` reading in place through the Go library
// (consumer.Reader.Acquire / View.Release), which `framering recv` does not
// offer: the matrix's Go view reader. It takes recv's flags, reports a
// gone writer on stderr as recv does, and prints recv's
// `summary key=value ...` line at exit (SIGINT, SIGTERM, --count, or the
// writer gone with --eof). A frame whose view the writer overwrote before
// Release counts as overwritten, whatever the check found in it.
func goReaderMain(args []string) int {
	fs := flag.NewFlagSet("go-reader", flag.ContinueOnError)
	name := fs.String("ring", "", "ring name")
	dir := fs.String("dir", ring.DefaultDir, "directory of the rings")
	mode := fs.String("mode", "all", "all or latest")
	startAt := fs.String("start", "newest", "newest, next or oldest")
	count := fs.Int("count", 0, "stop after N frames")
	timeout := fs.Duration("timeout", 0, "fail if no frame comes for this long")
	verify := fs.Bool("verify", false, "check every frame against the test pattern")
	wait := fs.Bool("wait", false, "wait for the ring to appear")
	eof := fs.Bool("eof", false, "exit when the writer goes")
	fs.Bool("view", true, "read in place (always)")
	fs.Bool("q", false, "quiet (always)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	opts := consumer.Options{Dir: *dir}
	switch *mode {
	case "all", "ordered":
	case "latest":
		opts.Mode = consumer.Latest
	default:
		fmt.Fprintf(os.Stderr, "go-reader: --mode %q\n", *mode)
		return 2
	}
	switch *startAt {
	case "newest":
	case "next":
		opts.StartAt = consumer.Next
	case "oldest":
		opts.StartAt = consumer.Oldest
	default:
		fmt.Fprintf(os.Stderr, "go-reader: --start %q\n", *startAt)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var r *consumer.Reader
	var err error
	if *wait {
		octx, cancel := ctx, context.CancelFunc(func() {})
		if *timeout > 0 {
			octx, cancel = context.WithTimeout(ctx, *timeout)
		}
		r, err = consumer.OpenWait(octx, *name, opts)
		cancel()
	} else {
		r, err = consumer.Open(*name, opts)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-reader: %v\n", err)
		return 1
	}
	defer r.Close()

	code, got, mismatches := 0, 0, 0
loop:
	for *count == 0 || got < *count {
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if *timeout > 0 {
			rctx, cancel = context.WithTimeout(ctx, *timeout)
		}
		v, err := r.Acquire(rctx)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			break loop
		case errors.Is(err, ring.ErrWriterGone):
			fmt.Fprintf(os.Stderr, "recv: %v\n", err)
			if *eof {
				break loop
			}
			continue
		default:
			fmt.Fprintf(os.Stderr, "go-reader: %v\n", err)
			code = 1
			break loop
		}
		f := v.Frame()
		number := f.Number
		var bad error
		if *verify {
			bad = pattern.Check(f.Data, number)
		}
		if err := v.Release(); errors.Is(err, ring.ErrOverwritten) {
			continue // counted as overwritten; the check saw a slot in change
		} else if err != nil {
			fmt.Fprintf(os.Stderr, "go-reader: %v\n", err)
			code = 1
			break loop
		}
		got++
		if bad != nil {
			mismatches++
			if mismatches <= 5 {
				fmt.Fprintf(os.Stderr, "recv: frame %d: %v\n", number, bad)
			}
		}
	}
	st := r.Stats()
	verified, up := 0, 0
	if *verify {
		verified = got - mismatches
	}
	if st.WriterUp {
		up = 1
	}
	// recv's keys, in recv's order (docs/CLI.md).
	fmt.Printf("summary delivered=%d lapped=%d skipped=%d overwritten=%d corrupt=%d retries=%d writer_gone=%d resumes=%d "+
		"resets=%d window_start=%d last=%d considered=%d writer_up=%d dropped=%d verified=%d mismatches=%d abandoned=%d "+
		"latency_samples=%d p50_ns=%d p99_ns=%d max_ns=%d\n",
		st.Delivered, st.Lapped, st.Skipped, st.Overwritten, st.Corrupt, st.Retries, st.WriterGone, st.Resumes,
		st.Resets, st.WindowStart, st.Last, st.Delivered+st.Dropped(), up, st.Dropped(), verified, mismatches, st.Abandoned,
		st.Latency.Count(), st.Latency.Quantile(0.5).Nanoseconds(), st.Latency.Quantile(0.99).Nanoseconds(),
		st.Latency.Max().Nanoseconds())
	if code == 0 && mismatches > 0 {
		fmt.Fprintf(os.Stderr, "go-reader: %d of %d frames do not match the test pattern\n", mismatches, got)
		code = 1
	}
	return code
}
