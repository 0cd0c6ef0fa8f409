// Command framering moves video frames between processes through shared
// memory: see README.md. Each subcommand lives in its own file and adds
// itself to the root command in an init function; the frames send
// publishes come from internal/source.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"

	"github.com/framering/framering/ring"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// root is the framering command. Subcommands register in init().
var root = &cobra.Command{
	Use:   "framering",
	Short: "Zero-copy video frames between processes through shared memory",
	Long: `framering moves video frames between processes on one Linux host through a
seqlock-guarded ring in POSIX shared memory: no copies, no torn frames,
every drop and every microsecond counted.

Rings live in /dev/shm; every command's --dir defaults to $FRAMERING_DIR
when it is set. Exit status: 0 ok, 1 failure, 2 usage error.`,
	SilenceUsage:  true,
	SilenceErrors: true,
}

// dirEnv names the environment variable that is the default of every
// --dir.
const dirEnv = "FRAMERING_DIR"

// usageError marks an error as a usage error: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usage error (exit status 2).
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// signalled is the error of a command stopped by a signal that exits with
// status 128 + the signal's number (demo).
type signalled struct {
	what string
	sig  syscall.Signal
}

func (e signalled) Error() string {
	return fmt.Sprintf("%s: interrupted by %v", e.what, sigName(e.sig))
}

func sigName(s syscall.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

func init() {
	// Flag parse errors and unknown commands are usage errors.
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nrun '%s --help' for usage", err, c.CommandPath())}
	})
}

// dirFlag adds --dir to f.
func dirFlag(f *pflag.FlagSet, p *string) {
	f.StringVar(p, "dir", ring.DefaultDir, "shared-memory directory holding the rings ($"+dirEnv+" when set)")
}

var setupOnce sync.Once

// setup finishes the command tree once every init has run: the version,
// $FRAMERING_DIR as the default of every --dir, ring-name completion and
// the completion command.
func setup() {
	setupOnce.Do(func() {
		root.Version = version()
		root.SetVersionTemplate("framering {{.Version}}\n")
		env := os.Getenv(dirEnv)
		walk(root, func(c *cobra.Command) {
			if f := c.Flags().Lookup("dir"); f != nil {
				if env != "" {
					f.Value.Set(env)
					f.DefValue = env
				}
				c.RegisterFlagCompletionFunc("dir", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
					return nil, cobra.ShellCompDirectiveFilterDirs
				})
			}
			for _, name := range ringFlags(c) {
				c.RegisterFlagCompletionFunc(name, completeRingFlag)
			}
			if c.Name() == "metrics" && c.ValidArgsFunction == nil { // metrics [RING...]
				c.ValidArgsFunction = completeRingArgs
			}
		})
		root.InitDefaultCompletionCmd()
		root.InitDefaultHelpFlag()
		root.InitDefaultVersionFlag()
	})
}

// walk calls fn for c and every command below it.
func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

// version is the module version and VCS revision from the build
// information, e.g. "v0.0.0-20250101120000-0123456789ab+dirty (revision
// 0123456789abcdef..., modified, 2025-01-01T12:00:00Z), go1.26.0".
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(no build information)"
	}
	return versionOf(bi)
}

func versionOf(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev != "" {
		details := []string{"revision " + rev}
		if modified {
			details = append(details, "modified")
		}
		if at != "" {
			details = append(details, at)
		}
		v += " (" + strings.Join(details, ", ") + ")"
	}
	return v + ", " + bi.GoVersion
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and returns the exit status: 0 ok,
// 1 failure, 2 usage error, 128+N after signal N (demo).
func run(args []string) int {
	setup()
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	fmt.Fprintf(os.Stderr, "framering: %s\n", withAdvice(err))
	var sig signalled
	if errors.As(err, &sig) {
		return 128 + int(sig.sig)
	}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		if cmd != nil && !errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "run '%s --help' for usage\n", cmd.CommandPath())
		}
		return 2
	}
	return 1
}

// isCobraUsage recognises cobra's own argument errors (unknown command,
// wrong argument count), which it does not type.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "unknown flag", "unknown shorthand", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
