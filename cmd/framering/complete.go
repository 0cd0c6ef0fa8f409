package main

import (
	"slices"
	"strings"

	"github.com/framering/framering/ring"
	"github.com/spf13/cobra"
)

// ringFlags names c's flags that take a ring name.
func ringFlags(c *cobra.Command) []string {
	var out []string
	if c.Flags().Lookup("ring") != nil && !c.Hidden {
		out = append(out, "ring")
	}
	switch c.CommandPath() {
	case "framering legacy ingest":
		out = append(out, "to")
	case "framering legacy mirror":
		out = append(out, "from")
	}
	return out
}

// ringDir is the --dir of c as given so far on the command line being
// completed.
func ringDir(c *cobra.Command) string {
	if f := c.Flags().Lookup("dir"); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	return ring.DefaultDir
}

// ringCandidates lists the rings in c's --dir that start with prefix,
// leaving out those in skip.
func ringCandidates(c *cobra.Command, prefix string, skip []string) []string {
	names, err := ringNames(ringDir(c))
	if err != nil {
		return nil
	}
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) && !slices.Contains(skip, n) {
			out = append(out, n)
		}
	}
	return out
}

// completeRingFlag completes the value of a flag that takes a ring name.
func completeRingFlag(c *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	return ringCandidates(c, prefix, nil), cobra.ShellCompDirectiveNoFileComp
}

// completeRingArgs completes ring names as positional arguments (stat,
// rm), one of each.
func completeRingArgs(c *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if c.Name() == "stat" && len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return ringCandidates(c, prefix, args), cobra.ShellCompDirectiveNoFileComp
}
