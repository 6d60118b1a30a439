package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/betasync/betasync"
)

// runFilter prints the filtered anthropic-beta value for a provider.
func runFilter(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("filter", stderr)
	provider := fs.String("provider", "", "provider to filter for, e.g. bedrock (required)")
	config := fs.String("config", "", "mapping file (default: the embedded mapping)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: betasync filter -provider P [-config FILE] [HEADER]\n\n"+
			"Prints the anthropic-beta value to send to provider P for HEADER, or for each\n"+
			"line of stdin. Flags may come before or after HEADER.\n\n")
		fs.PrintDefaults()
	}
	if helpAsked(args) {
		fs.SetOutput(stdout)
		fs.Usage()
		return nil
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError{"filter: " + err.Error()}
	}
	if *provider == "" {
		return usageError{"filter: -provider is required"}
	}
	if len(pos) > 1 {
		return usageError{"filter: give at most one HEADER argument (quote it)"}
	}
	m := betasync.Default()
	if *config != "" {
		var err error
		if m, err = readMapping(*config); err != nil {
			return err
		}
	}
	if _, ok := m.Section(*provider); !ok {
		fmt.Fprintf(stderr, "betasync: provider %q has no section in this mapping, so every beta is dropped (providers: %s)\n",
			*provider, strings.Join(m.Providers(), ", "))
	}
	if len(pos) == 1 {
		_, err := fmt.Fprintln(stdout, m.HeaderValue(*provider, pos[0]))
		return err
	}
	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 64<<10), 1<<20)
	out := bufio.NewWriter(stdout)
	var buf []byte
	for in.Scan() {
		buf = m.AppendHeaderValue(buf[:0], *provider, in.Text())
		buf = append(buf, '\n')
		if _, err := out.Write(buf); err != nil {
			return err
		}
	}
	if err := in.Err(); err != nil {
		return fmt.Errorf("filter: reading stdin: %w", err)
	}
	return out.Flush()
}

// runValidate checks a mapping file and prints a one-line summary, then one
// line per warning (what LiteLLM tolerates but can never match).
func runValidate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: betasync validate FILE\n\n"+
			"Checks a mapping document as the worker does before storing it; prints a\n"+
			"one-line summary and any warnings. Exit 1 when it is invalid. It takes no flags.\n")
	}
	if helpAsked(args) {
		fs.SetOutput(stdout)
		fs.Usage()
		return nil
	}
	// Flags anywhere among the arguments are parsed (and, validate having
	// none, refused by name), never taken for a file name.
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError{"validate: " + err.Error()}
	}
	if len(pos) != 1 {
		return usageError{fmt.Sprintf("validate: give exactly one FILE, got %d", len(pos))}
	}
	m, err := readMapping(pos[0])
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "%s: valid: %s (%s)\n", pos[0], m.Summary(), strings.Join(m.Providers(), ", ")); err != nil {
		return err
	}
	for _, w := range m.Warnings() {
		if _, err := fmt.Fprintf(stdout, "%s: warning: %s\n", pos[0], w); err != nil {
			return err
		}
	}
	return nil
}

func readMapping(path string) (*betasync.Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := betasync.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid: %s", path, betasync.ErrorMessage(err))
	}
	return m, nil
}

// runKeygen prints a new signing key: the seed (secret: the workers'
// BETASYNC_SIGNING_SEED) and its public key (the pods' BETASYNC_TRUSTED_KEYS).
func runKeygen(stdout io.Writer) error {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return err
	}
	seed, err := kp.Seed()
	if err != nil {
		return err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "BETASYNC_SIGNING_SEED=%s\nBETASYNC_TRUSTED_KEYS=%s\n", seed, pub)
	return err
}
