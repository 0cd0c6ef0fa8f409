// Package proc runs a child process the way framering's tests, the
// benchmark suite and the demo do: started so that it dies with its parent
// (PR_SET_PDEATHSIG), its stdout read line by line, its stderr kept for
// error messages; a caller expects a line, or waits for the exit with a
// timeout after which the child is killed. Timeouts are hang guards, never
// measurements.
//
// A Proc is safe for concurrent use, except that its lines go to one
// reader: use Line/Expect/Wait, or Lines, not both at once.
package proc

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MaxStderr is how many bytes of a child's stderr a Proc keeps.
const MaxStderr = 1 << 20

// Proc is a running child process.
type Proc struct {
	Cmd  *exec.Cmd
	Name string // for error messages

	lines chan string
	done  chan struct{}
	err   error // the exit status, set before done closes

	mu     sync.Mutex
	stderr strings.Builder
}

// Start starts cmd, which must not have its stdout or stderr set. The child
// gets SIGKILL when the parent dies, unless cmd.SysProcAttr says otherwise.
func Start(name string, cmd *exec.Cmd) (*Proc, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &Proc{Cmd: cmd, Name: name, lines: make(chan string, 1024), done: make(chan struct{})}
	cmd.Stderr = writerFunc(p.keepStderr)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<22)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		io.Copy(io.Discard, stdout) // a line too long for the scanner: drain, so the child never blocks
		close(p.lines)
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func (p *Proc) keepStderr(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if room := MaxStderr - p.stderr.Len(); room > 0 {
		p.stderr.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}

// Stderr returns what the child wrote to stderr so far (up to MaxStderr
// bytes).
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Lines returns the channel of the child's stdout lines; it is closed when
// stdout ends.
func (p *Proc) Lines() <-chan string { return p.lines }

// Done is closed when the child has exited and its stdout was read.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the child's exit status, valid once Done is closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Line returns the child's next stdout line, or an error if it exits or
// timeout passes first.
func (p *Proc) Line(timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l, ok := <-p.lines:
		if !ok {
			<-p.done
			return "", fmt.Errorf("%s exited (%v) before writing a line; stderr:\n%s", p.Name, p.err, p.Stderr())
		}
		return l, nil
	case <-t.C:
		return "", fmt.Errorf("%s wrote no line in %v; stderr:\n%s", p.Name, timeout, p.Stderr())
	}
}

// Expect reads lines until one starts with prefix and returns it; timeout
// bounds the whole wait.
func (p *Proc) Expect(prefix string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		l, err := p.Line(time.Until(deadline))
		if err != nil {
			return "", fmt.Errorf("waiting for %q: %w", prefix, err)
		}
		if strings.HasPrefix(l, prefix) {
			return l, nil
		}
	}
}

// Wait waits for the child to exit, killing it after timeout, and returns
// the rest of its stdout and its exit error (with its stderr).
func (p *Proc) Wait(timeout time.Duration) (rest []string, err error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				<-p.done
				if p.err != nil {
					return rest, fmt.Errorf("%s: %w; stderr:\n%s", p.Name, p.err, p.Stderr())
				}
				return rest, nil
			}
			rest = append(rest, l)
		case <-t.C:
			p.Kill()
			return rest, fmt.Errorf("%s still running after %v: killed; stderr:\n%s", p.Name, timeout, p.Stderr())
		}
	}
}

// Signal sends sig to the child.
func (p *Proc) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Kill sends SIGKILL and waits for the exit; lines nobody read are
// dropped.
func (p *Proc) Kill() {
	p.Cmd.Process.Kill()
	for range p.lines {
	}
	<-p.done
}
