package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// usageError is a bad command line: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	if _, ok := errors.AsType[usageError](err); ok {
		return 2
	}
	return 1
}

const usage = `usage:
  betasync                          run the daemon (settings from the environment)
  betasync filter -provider P [-config FILE] [HEADER]
                                    print the anthropic-beta value to send to provider P;
                                    without HEADER, filter one header value per stdin line
  betasync validate FILE            check a mapping document
  betasync keygen                   make a signing key: the seed for BETASYNC_SIGNING_SEED
                                    and the public key for BETASYNC_TRUSTED_KEYS
  betasync version                  print the version, commit and build date (also --version)
  betasync [COMMAND] --help         this help, or a command's
`

// run is the whole program; main only wires the process to it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		return runDaemon(ctx, getenv, stdout, stderr)
	}
	switch args[1] {
	case "filter":
		return runFilter(args[2:], stdin, stdout, stderr)
	case "validate":
		return runValidate(args[2:], stdout, stderr)
	case "keygen":
		if helpAsked(args[2:]) {
			_, err := io.WriteString(stdout, "usage: betasync keygen\n\nPrints a new signing key: BETASYNC_SIGNING_SEED (secret, for the workers)\nand BETASYNC_TRUSTED_KEYS (public, for the pods).\n")
			return err
		}
		if len(args) > 2 {
			return usageError{fmt.Sprintf("keygen takes no arguments, got %q", args[2])}
		}
		return runKeygen(stdout)
	case "version", "-version", "--version":
		if helpAsked(args[2:]) {
			_, err := io.WriteString(stdout, "usage: betasync version (or betasync --version)\n\nPrints the version, the commit and the build date (set by make build's link\nflags; otherwise from the build information go build records).\n")
			return err
		}
		if len(args) > 2 {
			return usageError{fmt.Sprintf("version takes no arguments, got %q", args[2])}
		}
		return printVersion(stdout)
	case "help", "-h", "-help", "--help":
		return printDaemonHelp(stdout)
	default:
		return usageError{fmt.Sprintf("unknown command %q\n%s", args[1], usage)}
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
