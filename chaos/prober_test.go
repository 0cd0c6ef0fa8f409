package chaos_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// prober drives a prober child (helperProber): it sends trials and reads
// their results, and replaces the child after a hang or a crash, which it
// counts into the tally.
type prober struct {
	t  *testing.T
	ty *tally
	c  *child
	id int
	// starts counts the children started (1 + the replacements).
	starts int
}

func newProber(t *testing.T, ty *tally) *prober { return &prober{t: t, ty: ty} }

// run sends tr and returns its results, or nil after a hang or a crash.
func (p *prober) run(what string, tr trial) []opResult {
	if p.c == nil {
		p.c = startChild(p.t, "prober")
		p.starts++
	}
	p.id++
	tr.ID = p.id
	if tr.Reads == 0 {
		tr.Reads = 1
	}
	b, err := json.Marshal(tr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.c.send(string(b))
	// The child's watchdog reports a hung call within the call deadline
	// plus the grace; this outer guard covers the whole trial.
	outer := lineWait + time.Duration(len(tr.Ops)*(tr.Reads+3))*(time.Duration(tr.CallMs)*time.Millisecond+grace)
	line, err := p.c.Line(outer)
	switch {
	case err == nil && strings.HasPrefix(line, fmt.Sprintf("result %d ", tr.ID)):
		var res []opResult
		js := strings.TrimPrefix(line, fmt.Sprintf("result %d ", tr.ID))
		if err := json.Unmarshal([]byte(js), &res); err != nil {
			p.t.Fatalf("prober result %q: %v", line, err)
		}
		return res
	case err == nil && strings.HasPrefix(line, "hang "):
		select { // the child writes its stacks, then exits
		case <-p.c.Done():
		case <-time.After(10 * time.Second):
		}
		p.c.kill()
		p.ty.hang("%s: %s\n%s", what, line, hungStack(p.c.Stderr()))
	case err == nil:
		p.c.kill()
		p.ty.fail("%s: prober said %q", what, line)
	default:
		select {
		case <-p.c.Done():
			if bad, why := crashed(p.c.Stderr(), p.c.Err()); bad {
				p.ty.crash("%s: %s", what, why)
			} else {
				p.ty.fail("%s: prober: %v", what, err)
			}
		default:
			p.c.kill()
			p.ty.hang("%s: prober gave no result within %v\n%s", what, outer, hungStack(p.c.Stderr()))
		}
	}
	p.c = nil
	return nil
}

func (p *prober) close() {
	if p.c != nil {
		p.c.in.Close()
		p.c.Wait(lineWait)
		p.c = nil
	}
}
