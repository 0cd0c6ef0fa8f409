package chaos_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/framering/framering/internal/testutil"
)

// TestChaosWakeups wakes a blocked reader thousands of times, half by
// cancelling its context and half by closing it from another goroutine,
// on a ring whose writer is alive but silent, with a one-minute wait slice:
// a wake-up lost between the reader's last check and its futex wait leaves
// it asleep for the rest of the slice, far past the hang guard. The
// readers rotate over Read, Acquire and ReadInPlace. Asserted: every wake
// returns (ErrClosed after Close, context.Canceled after cancel); the
// slowest wake is printed, not asserted.
func TestChaosWakeups(t *testing.T) {
	l := chaosLevel(t)
	ty := newTally(t, l, "wake-ups by cancel and Close")
	dir, name := ringDir(t), testutil.Name(t)
	w := startChild(t, "writer", "DIR="+dir, "RING="+name, "SLOTS=8", "BYTES=4096", "COUNT=1", "LINGER=1")
	w.expect(t, "ready")
	total, cycles := 0, l.wakes
	var maxus []string
	for total < cycles && !ty.tooManyHangs() {
		c := startChild(t, "waker", "DIR="+dir, "RING="+name, fmt.Sprintf("N=%d", cycles-total))
		rest, err := c.Wait(lineWait * 10)
		done := false
		for _, x := range rest {
			switch {
			case strings.HasPrefix(x, "wakes "):
				total += int(fieldInt(strings.Fields(x), "cancel") + fieldInt(strings.Fields(x), "close"))
				maxus = append(maxus, fieldsAfter(x, "maxus="))
				done = true
			case strings.HasPrefix(x, "hang "):
				ty.hang("%s\n%s", x, hungStack(c.Stderr()))
				// Go on with a fresh child for the cycles left.
				var n int
				fmt.Sscanf(fieldsAfter(x, "(cycle "), "%d", &n)
				total += n + 1
			case strings.HasPrefix(x, "error "):
				ty.fail("%s", x)
			}
		}
		if err != nil {
			if bad, why := crashed(c.Stderr(), err); bad {
				ty.crash("waker: %s", why)
			}
		}
		if !done && err != nil && len(rest) == 0 {
			ty.fail("waker: %v", err)
			break
		}
		if done {
			break
		}
	}
	w.in.Close()
	w.Wait(lineWait)
	ty.figure("wakes %d (half cancel, half Close; Read, Acquire, ReadInPlace), slowest wake µs %v", total, maxus)
}
