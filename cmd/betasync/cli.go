package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// commit and buildDate are set by `make build` with -ldflags "-X
// main.commit=... -X main.buildDate=..."; without them, buildInfo reads the
// VCS stamp the go command records (debug.ReadBuildInfo).
var (
	commit    = ""
	buildDate = ""
)

// buildInfo returns the version, the commit (with "-dirty" for a modified
// tree) and the build date, "unknown" where nothing says.
func buildInfo() (ver, rev, date string) {
	ver, rev, date = version, commit, buildDate
	if bi, ok := debug.ReadBuildInfo(); ok {
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.time":
				if date == "" {
					date = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && rev != "" && !strings.HasSuffix(rev, "-dirty") && commit == "" {
			rev += "-dirty"
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	if date == "" {
		date = "unknown"
	}
	return ver, rev, date
}

func printVersion(w io.Writer) error {
	ver, rev, date := buildInfo()
	_, err := fmt.Fprintf(w, "betasync %s (commit %s, built %s, %s)\n", ver, rev, date, runtime.Version())
	return err
}

// printDaemonHelp is `betasync --help`: the commands, then every variable
// the daemon reads with its default, from envVars (the README's table).
func printDaemonHelp(w io.Writer) error {
	if _, err := io.WriteString(w, usage+"\nThe daemon reads only the environment:\n\n"); err != nil {
		return err
	}
	for _, e := range envVars {
		def := e.def
		if def == "" {
			def = "(empty)"
		}
		if _, err := fmt.Fprintf(w, "  %s (default %s)\n      %s\n", e.name, def, e.doc); err != nil {
			return err
		}
	}
	return nil
}

// helpAsked reports whether a command's arguments ask for help: "help"
// first, or -h, -help or --help anywhere before "--", so `betasync COMMAND
// ARG --help` prints the usage like `betasync COMMAND --help`.
func helpAsked(args []string) bool {
	for i, a := range args {
		switch {
		case a == "--":
			return false
		case a == "help" && i == 0, a == "-h", a == "-help", a == "--help":
			return true
		}
	}
	return false
}

// parseInterspersed parses flags wherever they appear among the positional
// arguments (`filter HEADER -provider bedrock` as well as `filter -provider
// bedrock HEADER`), and returns the positional ones. After "--" everything
// is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		rest := args
		if i := indexOf(args, "--"); i >= 0 {
			rest = args[:i]
		}
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		left := fs.Args()
		if len(left) == 0 {
			if i := indexOf(args, "--"); i >= 0 {
				pos = append(pos, args[i+1:]...)
			}
			return pos, nil
		}
		pos = append(pos, left[0])
		args = append(left[1:len(left):len(left)], args[len(rest):]...)
	}
}

func indexOf(args []string, s string) int {
	for i, a := range args {
		if a == s {
			return i
		}
	}
	return -1
}
