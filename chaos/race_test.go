package chaos_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestChaosWriterRace starts four writers at once on one ring, again and
// again, half of them with another geometry than the ring has (so that
// they replace it while the others take it over or wait for its lock).
// All of them stay alive until the round ends. Asserted: exactly one
// writer owns the ring at a time (issue 9, item 8: a writer that locked an
// inode another one had just replaced ran as a second writer, and readers
// split between them), every other one fails with ErrBusy, and the winner's
// ring is the one under the name.
func TestChaosWriterRace(t *testing.T) {
	l := chaosLevel(t)
	ty := newTally(t, l, "writers racing to open one ring")
	dir := ringDir(t)
	const name = "race"
	rounds := l.stops * 10
	var winners, busy, splits int
	for round := 0; round < rounds && !ty.tooManyHangs(); round++ {
		if round%5 == 0 && !prepareRing(t, ty, dir, name, 4096<<(round%3), 2) {
			break
		}
		var cs []*child
		for i := 0; i < 4; i++ {
			bytes := 4096 << ((round + i) % 3)
			c := startChild(t, "creator", "DIR="+dir, "RING="+name, fmt.Sprintf("BYTES=%d", bytes), "SLOTS=8")
			c.expect(t, "pid")
			cs = append(cs, c)
		}
		var wg sync.WaitGroup
		lines := make([]string, len(cs))
		for i, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.send("go")
				l, err := c.Line(lineWait)
				if err != nil {
					l = "error " + err.Error()
				}
				lines[i] = l
			}()
		}
		wg.Wait()
		opened := 0
		for i, l := range lines {
			what := fmt.Sprintf("round %d writer %d", round, i)
			switch {
			case strings.HasPrefix(l, "opened "):
				opened++
			case strings.HasPrefix(l, "openerr busy "):
				busy++
			case strings.HasPrefix(l, "hang "):
				<-cs[i].Done()
				ty.hang("%s: %s\n%s", what, l, hungStack(cs[i].Stderr()))
			default:
				if bad, why := crashed(cs[i].Stderr(), nil); bad {
					ty.crash("%s: %s", what, why)
				} else {
					ty.fail("%s: %s", what, l)
				}
			}
		}
		switch {
		case opened == 1:
			winners++
		case opened > 1:
			splits++
			ty.fail("round %d: %d writers opened the ring at once (split brain): %q", round, opened, lines)
		default:
			ty.fail("round %d: no writer opened the ring: %q", round, lines)
		}
		for _, c := range cs {
			c.kill()
		}
	}
	ty.figure("rounds %d of 4 writers, one winner %d, split brains %d, busy %d", rounds, winners, splits, busy)
}
