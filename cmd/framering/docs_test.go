package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	inlineCmd = regexp.MustCompile("`(framering [^`]+)`")
	capsWord  = regexp.MustCompile(`^[A-Z][A-Z0-9_|]*$`)
)

// docCommands returns the framering command lines in a Markdown file: lines
// of code blocks that start with "framering " and inline code spans that
// do, without trailing comments. Synopses with placeholders (NAME, N,
// <command>, ...) are left out.
func docCommands(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	add := func(l string) {
		l, _, _ = strings.Cut(l, " #")
		l = strings.TrimSpace(strings.ReplaceAll(l, `\|`, "|"))
		if strings.Contains(l, "...") || strings.ContainsAny(l, "<>[]") {
			return
		}
		for _, f := range strings.Fields(l) {
			if capsWord.MatchString(f) {
				return
			}
		}
		out = append(out, l)
	}
	inBlock := false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			// Every command of a shell pipeline, without redirections.
			for _, seg := range strings.Split(l, " | ") {
				seg = strings.TrimSpace(seg)
				for _, redir := range []string{" > ", " < ", " 2> "} {
					seg, _, _ = strings.Cut(seg, redir)
				}
				if strings.HasPrefix(seg, "framering ") {
					add(seg)
				}
			}
			continue
		}
		for _, m := range inlineCmd.FindAllStringSubmatch(l, -1) {
			add(m[1])
		}
	}
	return out
}

// TestDocCommandsParse checks every framering command line of the README
// and docs/ against the command itself: the subcommand exists, every flag
// exists and takes the value given, and the positional arguments are
// accepted. (docs/LEGACY.md once showed `framering recv cam0`, which
// fails.)
func TestDocCommandsParse(t *testing.T) {
	setup() // the completion command, as run() has it
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	n := 0
	for _, path := range files {
		for _, line := range docCommands(t, path) {
			n++
			args := strings.Fields(strings.TrimPrefix(line, "framering "))
			cmd, rest, err := root.Find(args)
			if cmd == root && err == nil && len(rest) > 0 && strings.HasPrefix(rest[0], "-") {
				// framering --version, --help
			} else if err != nil || cmd == root {
				t.Errorf("%s: %q: no such command (%v)", filepath.Base(path), line, err)
				continue
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("%s: %q: %v", filepath.Base(path), line, err)
				continue
			}
			if cmd.Args != nil {
				if err := cmd.Args(cmd, cmd.Flags().Args()); err != nil {
					t.Errorf("%s: %q: %v", filepath.Base(path), line, err)
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("found only %d command lines in %v", n, files)
	}
	t.Logf("%d command lines checked", n)
}
