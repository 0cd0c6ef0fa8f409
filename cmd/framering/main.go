// Command framering moves video frames between processes through shared
// memory: see README.md. Each subcommand lives in its own file and adds
// itself to the root command in an init function.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// root is the framering command. Subcommands register in init().
var root = &cobra.Command{
	Use:           "framering",
	Short:         "Zero-copy video frames between processes through shared memory",
	Long:          "framering moves video frames between processes on one Linux host through a\nseqlock-guarded ring in POSIX shared memory: no copies, no torn frames,\nevery drop and every microsecond counted.",
	SilenceUsage:  true,
	SilenceErrors: true,
}

// usageError marks an error as a usage error: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usage error (exit status 2).
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func init() {
	// Flag parse errors and unknown commands are usage errors.
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nrun '%s --help' for usage", err, c.CommandPath())}
	})
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and returns the exit status: 0 ok,
// 1 failure, 2 usage error.
func run(args []string) int {
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	fmt.Fprintf(os.Stderr, "framering: %s\n", withAdvice(err))
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
