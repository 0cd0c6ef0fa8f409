package chaos_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/internal/proc"
	"github.com/framering/framering/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.Helper("writer", helperWriter)
	testutil.Helper("follower", helperFollower)
	testutil.Helper("prober", helperProber)
	testutil.Helper("creator", helperCreator)
	testutil.Helper("cycler", helperCycler)
	testutil.Helper("waker", helperWaker)
	testutil.Main(m)
}

// level is how hard the suite pushes: FRAMERING_CHAOS=short (CI) or full.
type level struct {
	name        string
	kills       int    // writer SIGKILLs in TestChaosKillMidFrame
	createKills int    // kills during creation in TestChaosKillDuringCreate
	stops       int    // SIGSTOP/SIGCONT cycles
	trials      [3]int // corruption trials with the writer dead, stopped, running
	cliEvery    int    // run the CLI commands on every n-th corruption trial
	frames32    int    // frames the writer publishes to the 32 readers
	cycles      int    // open/close cycles per kind in TestChaosCycles
	maxHangs    int    // a scenario stops after this many hangs (it has failed anyway)
	segRounds   int    // rounds of each segment attack
	wakes       int    // blocked reads woken by cancel or Close
}

var levels = map[string]level{
	"short": {name: "short", kills: 20, createKills: 24, stops: 3, trials: [3]int{120, 60, 120},
		cliEvery: 8, frames32: 8000, cycles: 10000, maxHangs: 3, segRounds: 2, wakes: 10000},
	"full": {name: "full", kills: 100, createKills: 100, stops: 10, trials: [3]int{400, 300, 500},
		cliEvery: 2, frames32: 60000, cycles: 10000, maxHangs: 10, segRounds: 10, wakes: 50000},
}

// chaosLevel returns the level FRAMERING_CHAOS asks for, or skips the test.
func chaosLevel(t *testing.T) level {
	t.Helper()
	name := os.Getenv("FRAMERING_CHAOS")
	if name == "" {
		t.Skip("the chaos suite runs with FRAMERING_CHAOS=short or full (make chaos-short, make chaos)")
	}
	l, ok := levels[name]
	if !ok {
		t.Fatalf("FRAMERING_CHAOS=%q: use short or full", name)
	}
	return l
}

// Hang guards. grace is how long a call may run past its own deadline (or
// its cancellation) before it counts as hung; they are never measurements.
var (
	grace      = envDur("FRAMERING_CHAOS_GRACE", 5*time.Second)
	lineWait   = 60 * time.Second // a child's next protocol line
	cliTimeout = 10 * time.Second // a command-line run (they take well under a second)
)

// seed returns the scenario's random seed and prints it.
func seed(t *testing.T) *rand.Rand {
	s := uint64(time.Now().UnixNano())
	if v := os.Getenv("FRAMERING_CHAOS_SEED"); v != "" {
		s, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (FRAMERING_CHAOS_SEED=%d reproduces it)", s, s)
	return rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
}

// ---------------------------------------------------------------------------
// Figures and failures

// tally collects a scenario's figures and failures. Figures are printed in
// one line; invariants are asserted after it.
type tally struct {
	t        *testing.T
	name     string
	maxHangs int

	mu      sync.Mutex
	torn    int
	hangs   int
	crashes int
	leaks   int
	detect  []time.Duration
	// resumeTimes are from a fault (or a new writer) to the first frame a
	// reader delivered after it.
	resumeTimes []time.Duration
	figures     []string
	failures    []string
	stopEarly   string
}

func newTally(t *testing.T, l level, name string) *tally {
	ty := &tally{t: t, name: name, maxHangs: l.maxHangs}
	t.Cleanup(ty.report)
	return ty
}

// fail records a failed invariant; it is reported (t.Errorf) with the
// figures when the scenario ends.
func (ty *tally) fail(format string, args ...any) {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	ty.failures = append(ty.failures, fmt.Sprintf(format, args...))
}

func (ty *tally) hang(format string, args ...any) {
	ty.mu.Lock()
	ty.hangs++
	ty.mu.Unlock()
	ty.fail("HANG: "+format, args...)
}

func (ty *tally) crash(format string, args ...any) {
	ty.mu.Lock()
	ty.crashes++
	ty.mu.Unlock()
	ty.fail("CRASH: "+format, args...)
}

func (ty *tally) tornFrame(n int, format string, args ...any) {
	if n == 0 {
		return
	}
	ty.mu.Lock()
	ty.torn += n
	ty.mu.Unlock()
	ty.fail("TORN: "+format, args...)
}

func (ty *tally) leak(format string, args ...any) {
	ty.mu.Lock()
	ty.leaks++
	ty.mu.Unlock()
	ty.fail("LEAK: "+format, args...)
}

func (ty *tally) detected(d time.Duration) {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	ty.detect = append(ty.detect, d)
}

// figure adds "format" to the figures line.
func (ty *tally) figure(format string, args ...any) {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	ty.figures = append(ty.figures, fmt.Sprintf(format, args...))
}

// tooManyHangs reports whether the scenario should stop: it has failed, and
// every further hang costs a grace period.
func (ty *tally) tooManyHangs() bool {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	if ty.hangs >= ty.maxHangs && ty.stopEarly == "" {
		ty.stopEarly = fmt.Sprintf("STOPPED EARLY after %d hangs", ty.hangs)
	}
	return ty.hangs >= ty.maxHangs
}

func (ty *tally) hangCount() int {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	return ty.hangs
}

func (ty *tally) report() {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	line := fmt.Sprintf("CHAOS %s [%s]: torn accepted %d, hangs %d, crashes %d, leaks %d",
		ty.name, os.Getenv("FRAMERING_CHAOS"), ty.torn, ty.hangs, ty.crashes, ty.leaks)
	if len(ty.detect) > 0 {
		d := slices.Clone(ty.detect)
		slices.Sort(d)
		ms := func(x time.Duration) string { return strconv.FormatFloat(float64(x)/1e6, 'f', 0, 64) }
		line += fmt.Sprintf(", detection ms p50 %s p90 %s max %s (n=%d)", ms(d[len(d)/2]), ms(d[len(d)*9/10]), ms(d[len(d)-1]), len(d))
	}
	if len(ty.resumeTimes) > 0 {
		d := slices.Clone(ty.resumeTimes)
		slices.Sort(d)
		ms := func(x time.Duration) string { return strconv.FormatFloat(float64(x)/1e6, 'f', 0, 64) }
		line += fmt.Sprintf(", resume ms p50 %s max %s (n=%d)", ms(d[len(d)/2]), ms(d[len(d)-1]), len(d))
	}
	for _, f := range ty.figures {
		line += ", " + f
	}
	if ty.stopEarly != "" {
		line += ", " + ty.stopEarly
	}
	if ty.t.Skipped() {
		return
	}
	if ty.t.Failed() || len(ty.failures) > 0 {
		line += " -- FAIL"
	}
	ty.t.Log(line)
	if p := os.Getenv("FRAMERING_CHAOS_REPORT"); p != "" {
		if f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			fmt.Fprintln(f, line)
			f.Close()
		}
	}
	for i, f := range ty.failures {
		if i == 12 {
			ty.t.Errorf("... and %d more failures", len(ty.failures)-i)
			break
		}
		ty.t.Errorf("%s", f)
	}
}

// ---------------------------------------------------------------------------
// Children

// helperEnv is the variable internal/testutil re-executes helpers by; the
// chaos children need a stdin, which testutil.Start does not give.
const helperEnv = "FRAMERING_TEST_HELPER"

// child is a re-executed test binary running a helper, with a stdin for
// commands. Close(stdin) asks it to finish.
type child struct {
	*proc.Proc
	in io.WriteCloser
}

// startChild starts helper name with extra environment variables. It is
// killed when the test ends, if still running.
func startChild(t *testing.T, name string, env ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), helperEnv+"="+name), env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p, err := proc.Start("helper "+name, cmd)
	if err != nil {
		t.Fatal(err)
	}
	c := &child{Proc: p, in: in}
	t.Cleanup(c.kill)
	return c
}

// kill SIGKILLs the child (also a stopped one) and reaps it.
func (c *child) kill() {
	select {
	case <-c.Done():
	default:
		c.Cmd.Process.Signal(syscall.SIGCONT)
		c.Kill()
	}
	c.in.Close()
}

func (c *child) pid() int { return c.Cmd.Process.Pid }

// send writes a command line to the child's stdin.
func (c *child) send(line string) error {
	_, err := io.WriteString(c.in, line+"\n")
	return err
}

// expect waits for a line starting with prefix.
func (c *child) expect(t *testing.T, prefix string) string {
	t.Helper()
	l, err := c.Expect(prefix, lineWait)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// crashed reports whether a finished child died of a panic, a runtime fatal
// error or a signal it did not get from us, with an excerpt of its stderr.
func crashed(stderr string, err error) (bool, string) {
	for _, m := range []string{"panic: ", "fatal error: ", "SIGSEGV", "SIGBUS", "unexpected signal", "runtime error", "WARNING: DATA RACE"} {
		if i := strings.Index(stderr, m); i >= 0 {
			return true, excerpt(stderr[i:], 1200)
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() != syscall.SIGKILL {
			return true, fmt.Sprintf("killed by %v; stderr: %s", ws.Signal(), excerpt(stderr, 600))
		}
	}
	return false, ""
}

func excerpt(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + " ..."
	}
	return s
}

// hungStack picks the goroutine stack of a hung call out of the dump a
// child writes on a hang: the first goroutine in the library (consumer,
// producer, legacy, internal) that is not the child's watchdog.
func hungStack(stderr string) string {
	blocks := strings.Split(stderr, "\n\n")
	for _, lib := range []string{"framering/consumer.", "framering/producer.", "framering/legacy.", "framering/internal/", "framering/"} {
		for _, g := range blocks {
			g = strings.TrimSpace(g)
			if strings.HasPrefix(g, "goroutine ") && strings.Contains(g, lib) && !strings.Contains(g, "(*watchdog).watch") {
				lines := strings.Split(g, "\n")
				if len(lines) > 21 {
					lines = lines[:21]
				}
				return strings.Join(lines, "\n")
			}
		}
	}
	return excerpt(stderr, 1500)
}

// ---------------------------------------------------------------------------
// The command line

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// cliBin returns the framering command: FRAMERING_BIN, or one built from
// this module into the user cache directory (rebuilt every run).
func cliBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binPath = os.Getenv("FRAMERING_BIN"); binPath != "" {
			return
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := filepath.Join(cache, "framering-chaos")
		if binErr = os.MkdirAll(dir, 0o755); binErr != nil {
			return
		}
		binPath = filepath.Join(dir, "framering")
		goCmd := "go"
		if g := os.Getenv("GO"); g != "" {
			goCmd = g
		}
		out, err := exec.Command(goCmd, "build", "-o", binPath, "github.com/framering/framering/cmd/framering").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("build the framering command: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// cliResult is what one command-line run did.
type cliResult struct {
	args           []string
	stdout, stderr string
	code           int
	hung, crash    bool
	crashWhy       string
}

// runCLI runs framering args with a deadline; past it the process is killed
// and the run counts as hung.
func runCLI(t *testing.T, timeout time.Duration, args ...string) cliResult {
	t.Helper()
	c, err := proc.Start("framering "+strings.Join(args, " "), exec.Command(cliBin(t), args...))
	if err != nil {
		t.Fatal(err)
	}
	res := cliResult{args: args}
	var out []string
	timer := time.NewTimer(timeout)
	defer timer.Stop()
loop:
	for {
		select {
		case l, ok := <-c.Lines():
			if !ok {
				break loop
			}
			out = append(out, l)
		case <-timer.C:
			res.hung = true
			c.Kill()
			break loop
		}
	}
	werr := c.Err()
	res.stdout, res.stderr = strings.Join(out, "\n"), c.Stderr()
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		res.code = ee.ExitCode()
	}
	if !res.hung {
		res.crash, res.crashWhy = crashed(res.stderr, werr)
		if res.code == 2 && !res.crash {
			// Exit status 2 is a usage error: the suite called the command
			// wrongly, or its flags changed.
			t.Errorf("framering %s: usage error: %s", strings.Join(args, " "), excerpt(res.stderr, 400))
		}
	}
	return res
}

// runCLIs runs several command lines at once, each with runCLI.
func runCLIs(t *testing.T, runs ...[]string) []cliResult {
	t.Helper()
	cliBin(t)
	var wg sync.WaitGroup
	out := make([]cliResult, len(runs))
	for i, args := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = runCLI(t, cliTimeout, args...)
		}()
	}
	wg.Wait()
	return out
}

// account counts a command-line run's hang or crash into ty.
func (ty *tally) cli(r cliResult, what string) {
	cmd := "framering " + strings.Join(r.args, " ")
	switch {
	case r.hung:
		ty.hang("%s: %s still running after %v (killed); stderr: %s", what, cmd, cliTimeout, excerpt(r.stderr, 600))
	case r.crash:
		ty.crash("%s: %s: %s", what, cmd, r.crashWhy)
	}
}

// exporter is a running `framering metrics` process.
type exporter struct {
	t    *testing.T
	dir  string
	url  string
	proc *proc.Proc
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startExporter starts `framering metrics --dir dir` and waits until it
// answers a scrape.
func startExporter(t *testing.T, dir string) *exporter {
	t.Helper()
	e := &exporter{t: t, dir: dir}
	e.start()
	return e
}

func (e *exporter) start() {
	t := e.t
	for attempt := 0; ; attempt++ {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		p, err := proc.Start("framering metrics", exec.Command(cliBin(t), "metrics", "--listen", addr, "--dir", e.dir))
		if err != nil {
			t.Fatal(err)
		}
		e.proc, e.url = p, "http://"+addr+"/metrics"
		go func() {
			for range p.Lines() {
			}
		}()
		// Ready when it accepts connections: whether it answers a scrape
		// is what the scenarios test.
		deadline := time.Now().Add(lineWait)
		for {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				conn.Close()
				t.Cleanup(func() { e.stop() })
				return
			}
			select {
			case <-p.Done():
				if strings.Contains(p.Stderr(), "address already in use") && attempt < 3 {
					break // another process took the port meanwhile: another one
				}
				t.Fatalf("framering metrics exited: %v; stderr: %s", p.Err(), p.Stderr())
			default:
				if time.Now().After(deadline) {
					p.Kill()
					t.Fatalf("framering metrics does not listen on %s: %v; stderr: %s", addr, err, p.Stderr())
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			break
		}
	}
}

func (e *exporter) stop() {
	select {
	case <-e.proc.Done():
	default:
		e.proc.Kill()
	}
}

// scrape fetches /metrics with a deadline. A scrape that does not answer is
// a hang; with restart, the exporter is then restarted so that the
// scenario can go on (without, the next scrape asks the same one again).
func (e *exporter) scrape(ty *tally, what string, restart bool) (string, bool) {
	c := http.Client{Timeout: cliTimeout}
	resp, err := c.Get(e.url)
	if err == nil {
		defer resp.Body.Close()
		b, rerr := io.ReadAll(resp.Body)
		if rerr == nil && resp.StatusCode == http.StatusOK {
			return string(b), true
		}
		err = fmt.Errorf("status %s, %v", resp.Status, rerr)
	}
	select {
	case <-e.proc.Done():
		bad, why := crashed(e.proc.Stderr(), e.proc.Err())
		if bad {
			ty.crash("%s: framering metrics died: %s", what, why)
		} else {
			ty.fail("%s: framering metrics exited: %v; stderr: %s", what, e.proc.Err(), excerpt(e.proc.Stderr(), 600))
		}
	default:
		ty.hang("%s: metrics scrape did not answer: %v", what, err)
		if !restart {
			return "", false
		}
		e.stop()
	}
	e.start()
	return "", false
}

// ---------------------------------------------------------------------------
// Children's results

// readerResult is a follower's closing line for one reader.
type readerResult struct {
	Idx, API, Mode string
	Mine           uint64 // frames the reader code itself saw delivered
	Torn           uint64 // accepted frames that failed the pattern check
	Order          uint64 // delivered frames not after the previous one (no reset between)
	Gones          uint64
	Errs           map[string]uint64
	FirstErr       map[string]string
	Stats          struct {
		Delivered, Dropped, Lapped, Skipped, Overwritten, Corrupt, Abandoned uint64
		Retries, WriterGone, Resumes, Resets, WindowStart, Last              uint64
	}
}

func parseResult(t *testing.T, line string) readerResult {
	t.Helper()
	var r readerResult
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "result ")), &r); err != nil {
		t.Fatalf("parse %q: %v", line, err)
	}
	return r
}

// checkAccounting asserts a reader's invariants: nothing torn accepted,
// frames in order, its own count equal to the library's, and delivered +
// dropped == published in its window (one window: no reset).
func checkAccounting(ty *tally, what string, r readerResult) {
	ty.tornFrame(int(r.Torn), "%s reader %s (%s %s) accepted %d torn frames", what, r.Idx, r.API, r.Mode, r.Torn)
	if r.Order != 0 {
		ty.fail("%s reader %s (%s %s): %d frames delivered out of order", what, r.Idx, r.API, r.Mode, r.Order)
	}
	s := r.Stats
	if r.Mine != s.Delivered {
		ty.fail("%s reader %s (%s %s): the reader saw %d frames delivered, Stats.Delivered says %d", what, r.Idx, r.API, r.Mode, r.Mine, s.Delivered)
	}
	if s.Resets == 0 && s.Last >= s.WindowStart && s.Delivered+s.Dropped != s.Last-s.WindowStart+1 {
		ty.fail("%s reader %s (%s %s): delivered %d + dropped %d != %d published in its window [%d, %d]",
			what, r.Idx, r.API, r.Mode, s.Delivered, s.Dropped, s.Last-s.WindowStart+1, s.WindowStart, s.Last)
	}
}

// ---------------------------------------------------------------------------
// Files

// tmpFiles lists the temporary names writers build segments under.
func tmpFiles(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".framering-tmp.") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// dirNames lists dir.
func dirNames(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// fieldInt returns the integer after "key=" in f.
func fieldInt(f []string, key string) uint64 {
	for _, x := range f {
		if v, ok := strings.CutPrefix(x, key+"="); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

func envDur(k string, def time.Duration) time.Duration {
	if v := os.Getenv(k); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func envInt(k string, def int) int {
	if v := os.Getenv(k); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

// ringDir returns a fresh directory for a scenario's rings, under /dev/shm,
// removed at the end; afterwards no process of the test may still use it.
func ringDir(t *testing.T) string {
	t.Helper()
	return testutil.ShmDir(t)
}

// withDeadline runs fn with a context that ends after d.
func withDeadline(d time.Duration, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return fn(ctx)
}
