package proc

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const hang = 30 * time.Second // hang guard, not a timing assertion

func TestExpectWaitStderr(t *testing.T) {
	p, err := Start("sh", exec.Command("sh", "-c", "echo one; echo ready 7; echo oops >&2; echo last; exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.Expect("ready", hang)
	if err != nil || l != "ready 7" {
		t.Fatalf("Expect = %q, %v", l, err)
	}
	rest, err := p.Wait(hang)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(err.Error(), "oops") {
		t.Fatalf("Wait error %v: want exit status 3 with the stderr", err)
	}
	if len(rest) != 1 || rest[0] != "last" {
		t.Errorf("rest of stdout %q, want [last]", rest)
	}
	if p.Err() == nil {
		t.Error("Err after an exit status 3 is nil")
	}
}

func TestWaitKillsAfterTimeout(t *testing.T) {
	p, err := Start("sleep", exec.Command("sleep", "600"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(50 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Wait on a sleeping child = %v, want it killed", err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Wait returned before the child was reaped")
	}
	if _, err := p.Line(hang); err == nil {
		t.Error("Line after exit succeeded")
	}
}

func TestSysProcAttrDeathSignal(t *testing.T) {
	cmd := exec.Command("true")
	p, err := Start("true", cmd)
	if err != nil {
		t.Fatal(err)
	}
	p.Wait(hang)
	if cmd.SysProcAttr == nil || cmd.SysProcAttr.Pdeathsig == 0 {
		t.Error("child started without a parent-death signal")
	}
}
