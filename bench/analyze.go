package bench

import (
	"fmt"
	"strings"
)

// Ratio is a derived figure that compares two results.
type Ratio struct {
	Name string `json:"name"`
	// Value is the ratio (or, for Unit "ns" and "frames", the figure);
	// zero when a side was not measured.
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"` // "x", "ns", "frames"
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
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	// Met is nil when the run did not measure it.
	Met *bool `json:"met"`
}

// MeasuredText is Measured, or says that the run did not measure it.
func (g Goal) MeasuredText() string {
	if g.Measured == "" {
		return "not measured in this run"
	}
	return g.Measured
}

// Status is MET, MISSED or n/a.
func (g Goal) Status() string {
	switch {
	case g.Met == nil:
		return "n/a"
	case *g.Met:
		return "MET"
	}
	return "MISSED"
}

// find returns the result of a case that ran without error, or nil.
func find(rs []Result, k Kind, t Transport, w Wait, s Shape, readers int) *Result {
	for i := range rs {
		r := &rs[i]
		if r.Err == "" && r.Kind == k && r.Transport == t && r.Wait == w && r.Shape == s && r.Readers == readers {
			return r
		}
	}
	return nil
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

// Analyze computes the ratios that matter and checks the goals.
func Analyze(rs []Result) ([]Ratio, []Goal) {
	var ratios []Ratio
	shapes := shapesOf(rs)
	for _, s := range shapes {
		cp := find(rs, Throughput, FrameringCopy, Futex, s, 1)
		vw := find(rs, Throughput, FrameringView, Futex, s, 1)
		mc := find(rs, Throughput, Memcpy, None, s, 1)
		if mc == nil || (cp == nil && vw == nil) {
			continue
		}
		ratios = append(ratios,
			Ratio{Name: "framering-copy throughput ÷ memcpy, " + s.String(), Value: Div(fps(cp), fps(mc)), Unit: "x",
				Detail: fmt.Sprintf("%.0f / %.0f frames/s", fps(cp), fps(mc))},
			Ratio{Name: "framering-view throughput ÷ memcpy, " + s.String(), Value: Div(fps(vw), fps(mc)), Unit: "x",
				Detail: fmt.Sprintf("%.0f / %.0f frames/s", fps(vw), fps(mc))})
	}
	for _, s := range shapes {
		vw := find(rs, Latency, FrameringView, Futex, s, 1)
		ud := find(rs, Latency, UDS, Block, s, 1)
		if vw == nil || ud == nil {
			continue
		}
		ratios = append(ratios, Ratio{Name: "framering-view latency p50 ÷ UDS p50, " + s.String(), Value: Div(p50(vw), p50(ud)), Unit: "x",
			Detail: Duration(vw.Latency.P50) + " / " + Duration(ud.Latency.P50)})
	}
	for _, s := range shapes {
		vw := find(rs, PingPong, FrameringView, Futex, s, 1)
		ud := find(rs, PingPong, UDS, Block, s, 1)
		if vw == nil || ud == nil {
			continue
		}
		ratios = append(ratios, Ratio{Name: "framering-view ping-pong p50 ÷ UDS, " + s.String(), Value: Div(p50(vw), p50(ud)), Unit: "x",
			Detail: Duration(vw.Latency.P50) + " / " + Duration(ud.Latency.P50)})
	}
	small, big := Shape404, Shape4K
	var flat [2]*Ratio
	for i, w := range []Wait{Futex, Spin} {
		a, b := find(rs, Latency, FrameringView, w, big, 1), find(rs, Latency, FrameringView, w, small, 1)
		if a == nil || b == nil {
			continue
		}
		ratios = append(ratios, Ratio{Name: fmt.Sprintf("framering-view p50 %s ÷ %s, %s", big, small, w), Value: Div(p50(a), p50(b)), Unit: "x",
			Detail: Duration(a.Latency.P50) + " / " + Duration(b.Latency.P50)})
		flat[i] = &ratios[len(ratios)-1]
	}
	var spinWorst *Result
	var spinAll []string
	for _, s := range shapes {
		r := find(rs, Latency, FrameringView, Spin, s, 1)
		if r == nil {
			continue
		}
		ratios = append(ratios, Ratio{Name: "framering-view p50, spin, " + s.String(), Value: p50(r), Unit: "ns"})
		spinAll = append(spinAll, s.String()+" "+Duration(r.Latency.P50))
		if spinWorst == nil || r.Latency.P50 > spinWorst.Latency.P50 {
			spinWorst = r
		}
	}
	torn := map[Transport][2]uint64{}
	for _, r := range rs {
		if r.Err != "" {
			continue
		}
		t := torn[r.Transport]
		t[0] += r.Torn
		t[1] += r.Delivered
		torn[r.Transport] = t
	}
	for _, t := range AllTransports {
		if v, ok := torn[t]; ok {
			ratios = append(ratios, Ratio{Name: "torn frames accepted, " + string(t), Value: float64(v[0]), Unit: "frames",
				Detail: fmt.Sprintf("of %d accepted, all cases", v[1])})
		}
	}

	var goals []Goal
	for i, w := range []Wait{Futex, Spin} {
		g := Goal{Name: "view latency flat across sizes, " + string(w), Target: fmt.Sprintf("%s p50 ≤ 1.2 × %s p50", big, small)}
		if flat[i] != nil {
			g.Measured = fmt.Sprintf("%.2fx (%s)", flat[i].Value, flat[i].Detail)
			g.Met = boolp(flat[i].Value <= 1.2)
		}
		goals = append(goals, g)
	}
	{
		g := Goal{Name: "copy-out read ≥ 0.9 × memcpy throughput, " + Shape1080.String(), Target: "≥ 0.90x"}
		cp := find(rs, Throughput, FrameringCopy, Futex, Shape1080, 1)
		mc := find(rs, Throughput, Memcpy, None, Shape1080, 1)
		if cp != nil && mc != nil {
			v := Div(fps(cp), fps(mc))
			g.Measured = fmt.Sprintf("%.2fx (%.0f / %.0f frames/s)", v, fps(cp), fps(mc))
			g.Met = boolp(v >= 0.9)
		}
		goals = append(goals, g)
	}
	{
		g := Goal{Name: "spin-mode view latency p50 ≤ 1 µs", Target: "≤ 1µs at every size"}
		if spinWorst != nil {
			g.Measured = "worst " + Duration(spinWorst.Latency.P50) + " (" + strings.Join(spinAll, ", ") + ")"
			g.Met = boolp(spinWorst.Latency.P50 <= 1000)
		}
		goals = append(goals, g)
	}
	{
		g := Goal{Name: "old recipe accepts torn frames, framering none", Target: "legacy > 0, framering = 0"}
		l, lok := torn[Legacy]
		c, cok := torn[FrameringCopy]
		v, vok := torn[FrameringView]
		if lok && (cok || vok) {
			fr := c[0] + v[0]
			g.Measured = fmt.Sprintf("legacy %d of %d, framering %d of %d", l[0], l[1], fr, c[1]+v[1])
			g.Met = boolp(l[0] > 0 && fr == 0)
		}
		goals = append(goals, g)
	}
	return ratios, goals
}

func boolp(b bool) *bool { return &b }
