package bench

import (
	"fmt"
	"strings"
)

// Ratio is a derived figure that compares two results.
type Ratio struct {
	Name string `json:"name"`
	// Value is the ratio (or, for Unit "ns", "frames" and "%", the
	// figure); zero when a side was not measured.
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"` // "x", "ns", "frames", "%"
	Detail string  `json:"detail"`
}

// Text formats the ratio for a table.
func (r Ratio) Text() string {
	if r.Value == 0 && r.Unit == "x" {
		return "not measured"
	}
	var v string
	switch r.Unit {
	case "x":
		v = fmt.Sprintf("%.2fx", r.Value)
	case "ns":
		v = Duration(int64(r.Value))
	case "%":
		v = fmt.Sprintf("%.3f %%", r.Value)
	default:
		v = fmt.Sprintf("%.0f", r.Value)
	}
	if r.Detail != "" {
		v += " (" + r.Detail + ")"
	}
	return v
}

// Goal is one of framering's performance goals and what the run showed.
type Goal struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	// Measured is the figure with what it was computed from; empty when
	// the run could not judge the goal.
	Measured string `json:"measured"`
	// Value is the measured figure as a number (the ratio, µs or %), 0
	// when not judged.
	Value float64 `json:"value"`
	// Judged says whether the run measured what the goal compares.
	Judged bool `json:"judged"`
	// Met is nil when the run could not judge the goal.
	Met *bool `json:"met"`
	// Why says, for a goal not judged, what the run lacked.
	Why string `json:"why_not_judged,omitempty"`
}

// MeasuredText is Measured, or says why the run could not judge it.
func (g Goal) MeasuredText() string {
	if !g.Judged {
		if g.Why != "" {
			return "not judged: " + g.Why
		}
		return "not judged in this run"
	}
	return g.Measured
}

// Status is MET, MISSED or "-" (not judged).
func (g Goal) Status() string {
	switch {
	case !g.Judged || g.Met == nil:
		return "-"
	case *g.Met:
		return "MET"
	}
	return "MISSED"
}

func boolp(b bool) *bool { return &b }

// judge fills in a judged goal.
func (g Goal) judge(v float64, met bool, measured string) Goal {
	g.Value, g.Judged, g.Met, g.Measured, g.Why = v, true, boolp(met), measured, ""
	return g
}

// find returns the result of a case that ran to the end, or nil.
func find(rs []Result, k Kind, t Transport, w Wait, s Shape, readers int, pin bool) *Result {
	for i := range rs {
		r := &rs[i]
		if r.ok() && r.Kind == k && r.Transport == t && r.Wait == w && r.Shape == s && r.Readers == readers && r.Pin == pin {
			return r
		}
	}
	return nil
}

// findAny is find, unpinned first, else pinned (a --pin run).
func findAny(rs []Result, k Kind, t Transport, w Wait, s Shape, readers int) *Result {
	if r := find(rs, k, t, w, s, readers, false); r != nil {
		return r
	}
	return find(rs, k, t, w, s, readers, true)
}

// pair finds two cases with the same pinning, unpinned first.
func pair(rs []Result, k Kind, s Shape, a, b lineKey, ra, rb int) (*Result, *Result) {
	for _, pin := range []bool{false, true} {
		x, y := find(rs, k, a.t, a.w, s, ra, pin), find(rs, k, b.t, b.w, s, rb, pin)
		if x != nil && y != nil {
			return x, y
		}
	}
	return nil, nil
}

// skipped returns why a case of transport t was skipped in the run, or "".
func skipped(rs []Result, t Transport) string {
	for _, r := range rs {
		if r.Transport == t && r.Skipped != "" {
			return r.Skipped
		}
	}
	return ""
}

// failed returns the error of a matching case that failed, or "".
func failed(rs []Result, k Kind, t Transport, s Shape) string {
	for _, r := range rs {
		if r.Kind == k && r.Transport == t && r.Shape == s && r.Err != "" {
			return r.Name + " failed: " + oneLine(r.Err)
		}
	}
	return ""
}

// shapesOf lists the sizes the results cover, smallest first.
func shapesOf(rs []Result) []Shape {
	seen := map[Shape]bool{}
	var out []Shape
	for _, r := range rs {
		if !seen[r.Shape] {
			seen[r.Shape] = true
			out = append(out, r.Shape)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Bytes() < out[j-1].Bytes(); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func p50(r *Result) float64 {
	if r == nil {
		return 0
	}
	return float64(r.Latency.P50)
}

func fps(r *Result) float64 {
	if r == nil {
		return 0
	}
	return r.FPS
}

// copyP50 is the median time of method in a copy-out result (0: none).
func copyP50(r *Result, method string) int64 {
	if r == nil {
		return 0
	}
	for _, c := range r.Copy {
		if c.Method == method {
			return c.Time.P50
		}
	}
	return 0
}

// Iceoryx is what issue 14 measured with Eclipse iceoryx v2.0.8 (iceperf,
// C API) on the machine docs/PERFORMANCE.md describes, in one window with
// framering: p50 one-way (round trip / 2), two processes, spinning, a
// memcpy of the payload in at the sender and out at the receiver; and the
// same window's glibc memcpy of one frame.
var Iceoryx = []struct {
	Shape       Shape
	InOutNs     int64 // iceoryx in + out
	GlibcNs     int64 // glibc memcpy, same window
	ZeroCopyNs  int64 // iceoryx zero-copy
	FrameringNs int64 // framering in + out then (issue 14's table)
}{
	{Shape404, 37_700, 10_700, 2_300, 116_500},
	{Shape1080, 526_000, 113_000, 2_300, 772_000},
	{Shape4K, 3_076_000, 1_016_000, 2_370, 3_015_000},
}

// Goal thresholds.
const (
	goalViewVsBare    = 1.10
	goalFanOut        = 1.50
	goalSpinVsLine    = 5.0
	goalCopyOut       = 0.90
	goalIceoryx       = 1.00
	goalFirstFrame    = 1.50
	goalCViewAddsNs   = 1000
	goalPythonCopyOut = 0.80
	goalIdleCPU       = 0.5 // percent of a core
)

var (
	keyBareFutex = lineKey{Bare, Futex}
	keyViewFutex = lineKey{FrameringView, Futex}
	keyBareSpin  = lineKey{Bare, Spin}
	keyViewSpin  = lineKey{FrameringView, Spin}
	keyCView     = lineKey{CView, Futex}
)

// Analyze computes the ratios that matter and judges the goals.
func Analyze(rs []Result) ([]Ratio, []Goal) {
	return ratios(rs), goals(rs)
}

func ratios(rs []Result) []Ratio {
	var out []Ratio
	shapes := shapesOf(rs)
	for _, s := range shapes {
		mc := findAny(rs, Throughput, Memcpy, None, s, 1)
		for _, t := range []Transport{FrameringCopy, FrameringView, CCopy, CView, PyCopy, PyView} {
			r := findAny(rs, Throughput, t, DefaultWait(t), s, 1)
			if r == nil || mc == nil {
				continue
			}
			out = append(out, Ratio{Name: fmt.Sprintf("%s throughput ÷ memcpy, %s", t, s), Value: Div(fps(r), fps(mc)), Unit: "x",
				Detail: fmt.Sprintf("%.0f / %.0f frames/s", fps(r), fps(mc))})
		}
	}
	// framering's view against a Unix socket, one way and there and back.
	for _, c := range []struct {
		kind Kind
		wait Wait
		name string
	}{
		{Latency, Futex, "framering-view latency p50 ÷ UDS p50, "},
		{PingPong, Spin, "framering-view (zero-copy, spin) ping-pong p50 ÷ UDS, "},
	} {
		for _, s := range shapes {
			vw := findAny(rs, c.kind, FrameringView, c.wait, s, 1)
			ud := findAny(rs, c.kind, UDS, Block, s, 1)
			if vw != nil && ud != nil {
				out = append(out, Ratio{Name: c.name + s.String(), Value: Div(p50(vw), p50(ud)), Unit: "x",
					Detail: Duration(vw.Latency.P50) + " / " + Duration(ud.Latency.P50)})
			}
		}
	}
	for _, ic := range Iceoryx {
		if vw := findAny(rs, PingPong, FrameringView, Spin, ic.Shape, 1); vw != nil {
			out = append(out, Ratio{Name: "framering-view zero-copy ping-pong p50 ÷ iceoryx's published zero-copy, " + ic.Shape.String(),
				Value: Div(p50(vw), float64(ic.ZeroCopyNs)), Unit: "x", Detail: Duration(vw.Latency.P50) + " / " + Duration(ic.ZeroCopyNs)})
		}
	}
	small, big := Shape404, Shape4K
	for _, w := range []Wait{Futex, Spin} {
		a, b := findAny(rs, Latency, FrameringView, w, big, 1), findAny(rs, Latency, FrameringView, w, small, 1)
		if a != nil && b != nil {
			out = append(out, Ratio{Name: fmt.Sprintf("framering-view p50 %s ÷ %s, %s", big, small, w), Value: Div(p50(a), p50(b)), Unit: "x",
				Detail: Duration(a.Latency.P50) + " / " + Duration(b.Latency.P50)})
		}
	}
	for _, s := range shapes {
		for _, t := range []Transport{CCopy, PyView, PyCopy} {
			goT := FrameringView
			if !t.view() {
				goT = FrameringCopy
			}
			a, b := findAny(rs, Latency, t, Futex, s, 1), findAny(rs, Latency, goT, Futex, s, 1)
			if a != nil && b != nil {
				out = append(out, Ratio{Name: fmt.Sprintf("%s latency p50 ÷ %s, %s", t, goT, s), Value: Div(p50(a), p50(b)), Unit: "x",
					Detail: Duration(a.Latency.P50) + " / " + Duration(b.Latency.P50)})
			}
		}
	}
	for _, s := range shapes {
		if r := findAny(rs, CopyOut, CCopy, Poll, s, 1); r != nil {
			if rd, gl := copyP50(r, MethodRead), copyP50(r, MethodGlibc); rd > 0 && gl > 0 {
				out = append(out, Ratio{Name: "C copy-out read ÷ glibc memcpy (time), " + s.String(), Value: Div(float64(rd), float64(gl)), Unit: "x",
					Detail: Duration(rd) + " / " + Duration(gl)})
			}
		}
	}
	for _, t := range []Transport{FrameringView, CView, PyView} {
		for _, r := range rs {
			if r.ok() && r.Kind == Idle && r.Transport == t && r.Idle != nil {
				out = append(out, Ratio{Name: fmt.Sprintf("idle %s reader, CPU", t), Value: r.Idle.CPUPercent, Unit: "%",
					Detail: fmt.Sprintf("of a core; %.1f wake-ups/s over %.1f s", r.Idle.WakeupsPerSec, r.Idle.Seconds)})
				break
			}
		}
	}
	torn := map[Transport][2]uint64{}
	for _, r := range rs {
		if !r.ok() || r.Transport == Bare {
			continue
		}
		t := torn[r.Transport]
		t[0] += r.Torn
		t[1] += r.Delivered
		torn[r.Transport] = t
	}
	for _, t := range AllTransports {
		if v, ok := torn[t]; ok {
			out = append(out, Ratio{Name: "torn frames accepted, " + string(t), Value: float64(v[0]), Unit: "frames",
				Detail: fmt.Sprintf("of %d accepted, all cases", v[1])})
		}
	}
	return out
}

// latencyShapes are the sizes with any latency result, or nil.
func latencyShapes(rs []Result) []Shape {
	var out []Shape
	for _, s := range shapesOf(rs) {
		for _, r := range rs {
			if r.Kind == Latency && r.Shape == s {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

func goals(rs []Result) []Goal {
	var out []Goal
	shapes := latencyShapes(rs)
	perSize := func(name string, f func(s Shape) Goal) {
		if len(shapes) == 0 {
			g := f(Shape{})
			g.Name = name + ", any size"
			g.Judged, g.Met, g.Measured = false, nil, ""
			if g.Why == "" {
				g.Why = "no latency case in this run"
			}
			out = append(out, g)
			return
		}
		for _, s := range shapes {
			out = append(out, f(s))
		}
	}
	// 1. The view's wake-up against the bare futex, at equal pauses.
	perSize("view futex p50 ÷ bare futex p50", func(s Shape) Goal {
		g := Goal{Name: "view futex p50 ÷ bare futex p50 at equal pacing, " + s.String(), Target: fmt.Sprintf("≤ %.2fx", goalViewVsBare),
			Why: "needs latency cases bare/futex and framering-view/futex at this size"}
		vw, bare := pair(rs, Latency, s, keyViewFutex, keyBareFutex, 1, 1)
		if vw == nil {
			return g
		}
		ps, note, why := basis(vw, bare)
		if g.Why = why; why != "" {
			return g
		}
		v := Div(float64(ps[0]), float64(ps[1]))
		return g.judge(v, v <= goalViewVsBare, fmt.Sprintf("%.2fx (%s / %s%s)", v, Duration(ps[0]), Duration(ps[1]), note))
	})
	// 2. Fan-out.
	perSize("4 readers ÷ 1 reader, view futex p50", func(s Shape) Goal {
		g := Goal{Name: "4 readers ÷ 1 reader, view futex p50, " + s.String(), Target: fmt.Sprintf("≤ %.2fx", goalFanOut),
			Why: "needs latency cases framering-view/futex with 1 and 4 readers at this size"}
		r4, r1 := pair(rs, Latency, s, keyViewFutex, keyViewFutex, 4, 1)
		if r4 == nil {
			return g
		}
		// 4 readers on fewer CPUs wait for each other by design: only the
		// 1-reader baseline must be uncontended.
		if g.Why = incomparable(r1); g.Why == "" && r4.Latency.P50 <= 0 {
			g.Why = r4.Name + " has no steady-state frame"
		}
		if g.Why != "" {
			return g
		}
		v := Div(p50(r4), p50(r1))
		return g.judge(v, v <= goalFanOut, fmt.Sprintf("%.2fx (%s / %s%s)", v, Duration(r4.Latency.P50), Duration(r1.Latency.P50), schedNote(r4, r1)))
	})
	// 3. Spin against a cache line's trip, pinned.
	perSize("spin view p50 ÷ cache-line one-way, pinned", func(s Shape) Goal {
		g := Goal{Name: "spin view p50 ÷ cache-line one-way (bare spin), pinned, " + s.String(), Target: fmt.Sprintf("≤ %.1fx", goalSpinVsLine),
			Why: "needs the pinned latency cases bare/spin and framering-view/spin at this size (2 CPUs)"}
		vw, line := find(rs, Latency, FrameringView, Spin, s, 1, true), find(rs, Latency, Bare, Spin, s, 1, true)
		if vw == nil || line == nil {
			return g
		}
		ps, note, why := basis(vw, line)
		if g.Why = why; why != "" {
			return g
		}
		v := Div(float64(ps[0]), float64(ps[1]))
		return g.judge(v, v <= goalSpinVsLine, fmt.Sprintf("%.2fx (%s / %s%s)", v, Duration(ps[0]), Duration(ps[1]), note))
	})
	// 4. Copy-out against the machine's copies.
	for _, ic := range Iceoryx {
		s := ic.Shape
		g := Goal{Name: "copy-out read ÷ fastest of glibc memcpy and Go copy, " + s.String(), Target: fmt.Sprintf("≥ %.2fx", goalCopyOut)}
		gor, cr := findAny(rs, CopyOut, FrameringCopy, Poll, s, 1), findAny(rs, CopyOut, CCopy, Poll, s, 1)
		read, gocopy, glibc := copyP50(gor, MethodRead), copyP50(gor, MethodGoCopy), copyP50(cr, MethodGlibc)
		switch {
		case read == 0 || gocopy == 0:
			g.Why = orDefault(failed(rs, CopyOut, FrameringCopy, s), fmt.Sprintf("needs the copy-out case framering-copy at %s", s))
		case glibc == 0:
			g.Why = fmt.Sprintf("the glibc baseline needs the copy-out case c-copy at %s (%s); Go copy alone: %.2fx", s,
				orDefault(skipped(rs, CCopy), orDefault(failed(rs, CopyOut, CCopy, s), "not in this run")), Div(float64(gocopy), float64(read)))
		default:
			best := min(gocopy, glibc)
			v := Div(float64(best), float64(read))
			g = g.judge(v, v >= goalCopyOut, fmt.Sprintf("%.2fx (read %s = %.2f GB/s; glibc memcpy %s, Go copy %s)", v, Duration(read),
				float64(s.Bytes())/float64(read), Duration(glibc), Duration(gocopy)))
		}
		out = append(out, g)
	}
	// 5. Copy in + copy out against iceoryx.
	for _, ic := range Iceoryx {
		s := ic.Shape
		g := Goal{Name: "copy-in + copy-out ping-pong p50 ÷ iceoryx's published, " + s.String(),
			Target: fmt.Sprintf("≤ %.2fx (iceoryx %s)", goalIceoryx, Duration(ic.InOutNs))}
		pp := findAny(rs, PingPong, FrameringCopy, Spin, s, 1)
		if pp == nil {
			g.Why = orDefault(failed(rs, PingPong, FrameringCopy, s), "needs the ping-pong case framering-copy/spin at "+s.String())
			out = append(out, g)
			continue
		}
		ps, note, why := basis(pp)
		if g.Why = why; why != "" {
			out = append(out, g)
			continue
		}
		v := Div(float64(ps[0]), float64(ic.InOutNs))
		m := fmt.Sprintf("%.2fx (%s / %s", v, Duration(ps[0]), Duration(ic.InOutNs))
		if glibc := copyP50(findAny(rs, CopyOut, CCopy, Poll, s, 1), MethodGlibc); glibc > 0 {
			m += fmt.Sprintf("; ÷ 2 × this run's glibc memcpy %.2fx, iceoryx's in its window %.2fx", Div(float64(ps[0]), float64(2*glibc)),
				Div(float64(ic.InOutNs), float64(2*ic.GlibcNs)))
		}
		out = append(out, g.judge(v, v <= goalIceoryx, m+note+")"))
	}
	// 6. First touch.
	{
		s := Shape1080
		g := Goal{Name: "first frame into a fresh " + s.String() + " ring ÷ steady-state frame", Target: fmt.Sprintf("≤ %.2fx", goalFirstFrame),
			Why: "needs the latency case framering-view/futex at " + s.String()}
		if r := findAny(rs, Latency, FrameringView, Futex, s, 1); r != nil && r.First != nil && r.First.PublishSteady > 0 {
			f := r.First
			v := Div(float64(f.Publish1), float64(f.PublishSteady))
			g = g.judge(v, v <= goalFirstFrame, fmt.Sprintf("%.2fx (frame 1 %s, frames 1-8 p50 %s, steady p50 %s; ring created in %s)", v,
				Duration(f.Publish1), Duration(f.PublishSlotsP50), Duration(f.PublishSteady), Duration(f.OpenNs)))
		}
		out = append(out, g)
	}
	// 7. What C costs over Go.
	perSize("C view p50 − Go view p50", func(s Shape) Goal {
		g := Goal{Name: "C view p50 − Go view p50, " + s.String(), Target: fmt.Sprintf("≤ +%s", Duration(goalCViewAddsNs)),
			Why: orDefault(skipped(rs, CView), "needs latency cases c-view/futex and framering-view/futex at this size")}
		c, gv := pair(rs, Latency, s, keyCView, keyViewFutex, 1, 1)
		if c == nil {
			return g
		}
		ps, note, why := basis(c, gv)
		if g.Why = why; why != "" {
			return g
		}
		d := ps[0] - ps[1]
		return g.judge(float64(d)/1e3, d <= goalCViewAddsNs, fmt.Sprintf("%+.1fµs (%s − %s%s)", float64(d)/1e3, Duration(ps[0]), Duration(ps[1]), note))
	})
	// 8. What Python's copy-out costs over numpy.
	{
		var any bool
		for _, s := range shapesOf(rs) {
			r := findAny(rs, CopyOut, PyCopy, Poll, s, 1)
			if r == nil {
				continue
			}
			any = true
			g := Goal{Name: "Python copy-out ÷ numpy copy in one process, " + s.String(), Target: fmt.Sprintf("≥ %.2fx", goalPythonCopyOut)}
			read, np := copyP50(r, MethodRead), copyP50(r, MethodNumpy)
			if read == 0 || np == 0 {
				g.Why = "the copy-out case py-copy timed no frame"
			} else {
				v := Div(float64(np), float64(read))
				g = g.judge(v, v >= goalPythonCopyOut, fmt.Sprintf("%.2fx (read(out=) %s = %.2f GB/s, numpy copyto %s = %.2f GB/s)", v,
					Duration(read), float64(s.Bytes())/float64(read), Duration(np), float64(s.Bytes())/float64(np)))
			}
			out = append(out, g)
		}
		if !any {
			out = append(out, Goal{Name: "Python copy-out ÷ numpy copy in one process", Target: fmt.Sprintf("≥ %.2fx", goalPythonCopyOut),
				Why: orDefault(skipped(rs, PyCopy), "needs the copy-out case py-copy")})
		}
	}
	// 9. Torn frames.
	{
		g := Goal{Name: "old recipe accepts torn frames, framering none", Target: "legacy > 0, framering = 0",
			Why: "needs legacy and framering cases (throughput shows legacy's tears best)"}
		var l, ln, f, fn uint64
		var lok, fok bool
		for _, r := range rs {
			switch {
			case !r.ok():
			case r.Transport == Legacy:
				l, ln, lok = l+r.Torn, ln+r.Delivered, true
			case r.Transport.ring():
				f, fn, fok = f+r.Torn, fn+r.Delivered, true
			}
		}
		if lok && fok {
			g = g.judge(float64(f), l > 0 && f == 0, fmt.Sprintf("legacy %d of %d, framering (Go, C, Python readers) %d of %d", l, ln, f, fn))
		}
		out = append(out, g)
	}
	// 10. Idle.
	{
		g := Goal{Name: "a blocked Go reader's CPU, idle ring", Target: fmt.Sprintf("≤ %.1f %% of a core", goalIdleCPU),
			Why: "needs the idle case framering-view"}
		for _, r := range rs {
			if r.ok() && r.Kind == Idle && r.Transport == FrameringView && r.Idle != nil {
				v := r.Idle.CPUPercent
				g = g.judge(v, v <= goalIdleCPU, fmt.Sprintf("%.3f %% (%.1f wake-ups/s over %.1f s)", v, r.Idle.WakeupsPerSec, r.Idle.Seconds))
				break
			}
		}
		out = append(out, g)
	}
	return out
}

// maxContended is the share of contended frames above which a case's p50
// measures the scheduler rather than the transport.
const maxContended = 0.5

// incomparable says why a goal cannot be judged from these results' p50s
// over all frames: a case without steady-state frames, or one where most
// frames waited for a CPU (then the run measured the scheduler, and says
// so rather than calling the goal met or missed); "" if they are fine.
func incomparable(rs ...*Result) string {
	for _, r := range rs {
		if r.Latency.P50 <= 0 {
			return r.Name + " has no steady-state frame"
		}
	}
	for _, r := range rs {
		if r.Sched != nil && r.Sched.Contended > maxContended {
			return fmt.Sprintf("%s: %.0f %% of frames waited ≥ 5µs for a CPU (p50 %s, p50 of the others %s): the run measured the scheduler; rerun on a quieter machine",
				r.Name, 100*r.Sched.Contended, Duration(r.Latency.P50), Duration(r.Sched.UncontendedP50))
		}
	}
	return ""
}

// minUncontended is the fewest uncontended frames a case needs for a
// goal to be judged on them.
const minUncontended = 20

// basis returns the p50s a goal compares: over all steady-state frames
// when no case had most of its frames contended; otherwise over each
// case's uncontended frames (the transport's figure, the scheduler's
// share set apart), if each has at least minUncontended of them; a note
// for the measured text; or why the goal cannot be judged.
func basis(rs ...*Result) (p50s []int64, note, why string) {
	if why = incomparable(rs...); why == "" {
		for _, r := range rs {
			p50s = append(p50s, r.Latency.P50)
		}
		return p50s, schedNote(rs...), ""
	}
	var shares, all []string
	for _, r := range rs {
		if r.Latency.P50 <= 0 {
			return nil, "", why
		}
		s := r.Sched
		if s == nil || s.UncontendedP50 <= 0 || float64(s.Frames)*(1-s.Contended) < minUncontended {
			return nil, "", why
		}
		p50s = append(p50s, s.UncontendedP50)
		shares = append(shares, fmt.Sprintf("%.0f %%", 100*s.Contended))
		all = append(all, Duration(r.Latency.P50))
	}
	return p50s, fmt.Sprintf("; on the uncontended frames: %s of frames waited ≥ 5µs for a CPU; over all frames %s",
		strings.Join(shares, ", "), strings.Join(all, " / ")), ""
}

// schedNote puts the two cases' scheduler figures beside a ratio when
// either had contended frames.
func schedNote(rs ...*Result) string {
	var parts []string
	for _, r := range rs {
		if r.Sched != nil && r.Sched.Contended >= 0.1 {
			parts = append(parts, fmt.Sprintf("%s: %.0f %% of frames contended", r.Transport, 100*r.Sched.Contended))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, ", ")
}
