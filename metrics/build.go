package metrics

import (
	"regexp"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// modulePath is framering's module path, looked up in the build info.
const modulePath = "github.com/framering/framering"

// Build says which framering a process runs: the values of
// framering_build_info's labels.
type Build struct {
	// Version is the framering module's version: a tag (v1.2.3), a
	// pseudo-version, "(devel)", or "unknown" without build info.
	Version string
	// Revision is the VCS revision framering was built from (the commit
	// hash, "-dirty" appended for a modified checkout) when the binary is
	// framering's own command built from a checkout, the hash of a
	// pseudo-version when framering is a dependency, else "unknown".
	Revision string
	// GoVersion is the Go release that built the binary (runtime.Version).
	GoVersion string
}

// pseudoRev is the commit hash at the end of a pseudo-version
// (v0.0.0-20060102150405-abcdefabcdef).
var pseudoRev = regexp.MustCompile(`-\d{14}-([0-9a-f]{12})(\+incompatible)?$`)

// ReadBuild returns the running binary's [Build], from
// runtime/debug.ReadBuildInfo.
func ReadBuild() Build {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return buildOf(bi)
}

// buildOf is ReadBuild for the build info bi (nil: none).
func buildOf(bi *debug.BuildInfo) Build {
	b := Build{Version: "unknown", Revision: "unknown", GoVersion: runtime.Version()}
	if bi == nil {
		return b
	}
	if bi.Main.Path == modulePath {
		if bi.Main.Version != "" {
			b.Version = bi.Main.Version
		}
		var rev string
		var dirty bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if dirty {
				rev += "-dirty"
			}
			b.Revision = rev
		} else if m := pseudoRev.FindStringSubmatch(b.Version); m != nil {
			b.Revision = m[1]
		}
		return b
	}
	for _, d := range bi.Deps {
		if d.Path != modulePath {
			continue
		}
		if d.Replace != nil && d.Replace.Version != "" {
			d = d.Replace
		}
		if d.Version != "" {
			b.Version = d.Version
		}
		if m := pseudoRev.FindStringSubmatch(d.Version); m != nil {
			b.Revision = m[1]
		}
	}
	return b
}

var buildInfo = spec{"", "build_info",
	"A metric with a constant value 1, labelled with the framering version, VCS revision and Go version the process was built from."}

// NewBuildInfoCollector returns a collector of
// framering_build_info{version, revision, goversion} 1 (see [ReadBuild]).
func NewBuildInfoCollector() prometheus.Collector {
	b := ReadBuild()
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace:   namespace,
		Name:        buildInfo.name,
		Help:        buildInfo.help,
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion},
	}, func() float64 { return 1 })
}

// NewRegistry returns a registry holding what every framering command
// serves besides its own metrics: the Go runtime's (go_*) and the
// process's (process_*) standard collectors and framering_build_info.
// Register writers, readers or an [Exporter] into it. A program that
// already serves go_* and process_* should use its own registry and add
// [NewBuildInfoCollector] if it wants framering's version.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		NewBuildInfoCollector(),
	)
	return reg
}
