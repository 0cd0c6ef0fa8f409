package metrics

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBuildOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want Build
	}{
		{"no build info", nil, Build{"unknown", "unknown", runtime.Version()}},
		{"framering's command from a checkout", &debug.BuildInfo{
			Main: debug.Module{Path: modulePath, Version: "v0.3.0"},
			Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "90473e7aa0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"},
				{Key: "vcs.modified", Value: "true"},
			},
		}, Build{"v0.3.0", "90473e7aa0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5-dirty", runtime.Version()}},
		{"go install of a pseudo-version", &debug.BuildInfo{
			Main: debug.Module{Path: modulePath, Version: "v0.0.0-20260101120000-90473e7aa0b1"},
		}, Build{"v0.0.0-20260101120000-90473e7aa0b1", "90473e7aa0b1", runtime.Version()}},
		{"a dependency of another program", &debug.BuildInfo{
			Main: debug.Module{Path: "example.com/cam", Version: "(devel)"},
			Deps: []*debug.Module{
				{Path: "github.com/spf13/cobra", Version: "v1.10.2"},
				{Path: modulePath, Version: "v0.0.0-20260101120000-abcdefabcdef"},
			},
		}, Build{"v0.0.0-20260101120000-abcdefabcdef", "abcdefabcdef", runtime.Version()}},
		{"a tagged dependency", &debug.BuildInfo{
			Main: debug.Module{Path: "example.com/cam"},
			Deps: []*debug.Module{{Path: modulePath, Version: "v1.2.3"}},
		}, Build{"v1.2.3", "unknown", runtime.Version()}},
		{"a program without framering", &debug.BuildInfo{
			Main: debug.Module{Path: "example.com/cam", Version: "v9.9.9"},
		}, Build{"unknown", "unknown", runtime.Version()}},
	} {
		if got := buildOf(tc.bi); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestNewRegistry: what every framering command serves besides its own
// metrics: go_*, process_* and framering_build_info.
func TestNewRegistry(t *testing.T) {
	reg := NewRegistry()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, n := range []string{"go_goroutines", "go_memstats_alloc_bytes", "go_gc_duration_seconds",
		"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds",
		"framering_build_info"} {
		if !have[n] {
			t.Errorf("NewRegistry lacks %s", n)
		}
	}
	b := ReadBuild()
	if b.GoVersion != runtime.Version() || b.Version == "" || b.Revision == "" {
		t.Errorf("ReadBuild() = %+v", b)
	}
	want := `
# HELP framering_build_info A metric with a constant value 1, labelled with the framering version, VCS revision and Go version the process was built from.
# TYPE framering_build_info gauge
framering_build_info{goversion="` + b.GoVersion + `",revision="` + b.Revision + `",version="` + b.Version + `"} 1
`
	if err := promtest.GatherAndCompare(reg, strings.NewReader(want), "framering_build_info"); err != nil {
		t.Error(err)
	}
	problems, err := promtest.GatherAndLint(prometheus.Gatherers{reg}, "framering_build_info")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
