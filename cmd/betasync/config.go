package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lmittmann/tint"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/worker"
)

// envVars lists every variable the daemon reads, with its default, in the
// order the README documents them.
var envVars = []struct{ name, def, doc string }{
	{"LITELLM_ANTHROPIC_BETA_HEADERS_URL", worker.DefaultURL, "where to fetch the mapping (http or https); the default is LiteLLM's file on GitHub main"},
	{"LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "False", "True: never fetch; reload re-reads BETASYNC_LOCAL_CONFIG (or the embedded mapping)"},
	{"LITELLM_MASTER_KEY", "", "master (admin) key for the API; generated and printed at start when no key is configured"},
	{"NATS_URL", "", "join this NATS (comma-separated URLs); empty: run an embedded server"},
	{"NATS_USER", "", "NATS user name (with NATS_PASSWORD)"},
	{"NATS_PASSWORD", "", "NATS password"},
	{"NATS_TOKEN", "", "NATS token"},
	{"NATS_CREDS", "", "NATS credentials file (JWT + NKey)"},
	{"NATS_CA", "", "CA file to verify the NATS servers"},
	{"NATS_CERT", "", "client certificate for NATS TLS (with NATS_KEY)"},
	{"NATS_KEY", "", "client key for NATS TLS"},
	{"BETASYNC_NATS_LISTEN", "127.0.0.1:4222", "embedded NATS client address"},
	{"BETASYNC_DATA_DIR", "./data", "embedded NATS JetStream directory"},
	{"BETASYNC_NATS_CONNECT_TIMEOUT", "10s", "how long to wait for NATS at start"},
	{"BETASYNC_HTTP_ADDR", ":4000", "admin API address (health and metrics only on a worker-only replica)"},
	{"BETASYNC_ROLES", "api,worker", "what this replica runs: api, worker, or both"},
	{"BETASYNC_REPLICA_ID", "<hostname>-<pid>", "names this replica in status and logs"},
	{"BETASYNC_SIGNING_SEED", "", "worker: nkeys seed (SU...) that signs every stored version (betasync keygen makes one); BETASYNC_SIGNING_SEED_FILE to read it from a file"},
	{"BETASYNC_SIGNING_SEED_FILE", "", "file holding BETASYNC_SIGNING_SEED"},
	{"BETASYNC_TRUSTED_KEYS", "", "comma-separated public keys (U...) whose signed versions this replica applies; set: unsigned versions are rejected"},
	{"BETASYNC_KEYS_FILE", "", "JSON array of {name, sha256, role} API keys (role admin or viewer; LiteLLM's roles accepted)"},
	{"BETASYNC_PUBLIC_CONFIG", "False", "True: serve /anthropic_beta_headers_config.json without a key (for LiteLLM pods)"},
	{"BETASYNC_TRUSTED_PROXIES", "", "comma-separated IPs or CIDRs of reverse proxies whose X-Forwarded-For names the client (for the failed-login throttle and the audit)"},
	{"BETASYNC_LOCAL_CONFIG", "", "local mapping file for local-only mode and the first version (default: embedded)"},
	{"BETASYNC_FETCH_TIMEOUT", "10s", "timeout of one fetch, body included"},
	{"BETASYNC_CHECK_INTERVAL", "10s", "how often each replica checks the schedule"},
	{"BETASYNC_LOCK_TTL", "15s", "worker lease TTL; renewed every third of it"},
	{"BETASYNC_KV_REPLICAS", "1", "JetStream KV bucket replicas (3 on a cluster)"},
	{"BETASYNC_HISTORY", "64", "mapping versions kept for history and rollback (32 to 64); older ones are purged"},
	{"BETASYNC_SHUTDOWN_TIMEOUT", "20s", "bound of the whole shutdown: requests and commands still in flight then are cut off"},
	{"BETASYNC_FLEET_WINDOW", "500ms", "how long a fleet view collects pod answers (at most 10s)"},
	{"BETASYNC_LOG_FORMAT", "auto", "text (coloured), json, or auto: text on a terminal, json otherwise"},
	{"BETASYNC_LOG_LEVEL", "info", "debug, info, warn or error"},
}

// config is the daemon's validated settings.
type config struct {
	url            string
	localOnly      bool
	publicConfig   bool
	localFile      string
	masterKey      string
	keysFile       string
	trustedProxies []netip.Prefix
	signer         *betasync.Signer   // nil: versions are stored unsigned
	verifier       *betasync.Verifier // nil: versions are not verified
	natsURL        string
	natsUser       string
	natsPassword   string
	natsToken      string
	natsCreds      string
	natsCA         string
	natsCert       string
	natsKey        string
	natsListen     string
	dataDir        string
	connectTimeout time.Duration
	httpAddr       string
	api, worker    bool
	replicaID      string
	fetchTimeout   time.Duration
	checkInterval  time.Duration
	lockTTL        time.Duration
	kvReplicas     int
	history        int
	shutdown       time.Duration
	fleetWindow    time.Duration
	logFormat      string
	logLevel       slog.Level
}

// loadConfig reads and checks the environment. Every error names the
// variable at fault.
func loadConfig(getenv func(string) string) (config, error) {
	r := &reader{getenv: getenv}
	c := config{
		url:          r.env("LITELLM_ANTHROPIC_BETA_HEADERS_URL"),
		localFile:    r.env("BETASYNC_LOCAL_CONFIG"),
		masterKey:    strings.TrimSpace(getenv("LITELLM_MASTER_KEY")), // a Secret from a file ends in a newline; clients' keys are trimmed too
		keysFile:     r.env("BETASYNC_KEYS_FILE"),
		natsURL:      r.env("NATS_URL"),
		natsUser:     r.env("NATS_USER"),
		natsPassword: getenv("NATS_PASSWORD"),
		natsToken:    getenv("NATS_TOKEN"),
		natsCreds:    r.env("NATS_CREDS"),
		natsCA:       r.env("NATS_CA"),
		natsCert:     r.env("NATS_CERT"),
		natsKey:      r.env("NATS_KEY"),
		natsListen:   r.env("BETASYNC_NATS_LISTEN"),
		dataDir:      r.env("BETASYNC_DATA_DIR"),
		httpAddr:     r.env("BETASYNC_HTTP_ADDR"),
		replicaID:    r.env("BETASYNC_REPLICA_ID"),

		connectTimeout: r.duration("BETASYNC_NATS_CONNECT_TIMEOUT", 0, 0),
		fetchTimeout:   r.duration("BETASYNC_FETCH_TIMEOUT", 0, 0),
		checkInterval:  r.duration("BETASYNC_CHECK_INTERVAL", 0, 0),
		lockTTL:        r.duration("BETASYNC_LOCK_TTL", time.Second, 0),
		shutdown:       r.duration("BETASYNC_SHUTDOWN_TIMEOUT", 0, 0),
		fleetWindow:    r.duration("BETASYNC_FLEET_WINDOW", 0, 10*time.Second),
		localOnly:      r.boolean("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS"),
		publicConfig:   r.boolean("BETASYNC_PUBLIC_CONFIG"),
		kvReplicas:     r.integer("BETASYNC_KV_REPLICAS", 1, 5, ""),
		history:        r.integer("BETASYNC_HISTORY", 32, 64, " versions (JetStream KV keeps at most 64)"),
		trustedProxies: r.prefixes("BETASYNC_TRUSTED_PROXIES"),
	}
	c.api, c.worker = r.roles("BETASYNC_ROLES")
	if c.replicaID == "" {
		host, err := os.Hostname()
		if err != nil {
			host = "betasync"
		}
		c.replicaID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	switch c.logFormat = strings.ToLower(r.env("BETASYNC_LOG_FORMAT")); c.logFormat {
	case "auto", "text", "json":
	default:
		r.fail("BETASYNC_LOG_FORMAT=%q: want auto, text or json", getenv("BETASYNC_LOG_FORMAT"))
	}
	if err := c.logLevel.UnmarshalText([]byte(r.env("BETASYNC_LOG_LEVEL"))); err != nil {
		r.fail("BETASYNC_LOG_LEVEL=%q: want debug, info, warn or error", getenv("BETASYNC_LOG_LEVEL"))
	}
	c.signer, c.verifier = signing(getenv, r.fail)
	if (c.natsCert == "") != (c.natsKey == "") {
		r.fail("NATS_CERT and NATS_KEY go together")
	}
	if c.natsURL == "" && c.dataDir != "" {
		if err := checkWritableDir(c.dataDir); err != nil {
			r.fail("BETASYNC_DATA_DIR=%q: %v", c.dataDir, err)
		}
	}
	if len(r.errs) > 0 {
		return config{}, fmt.Errorf("invalid settings:\n  %s", strings.Join(r.errs, "\n  "))
	}
	return c, nil
}

// reader reads variables, with envVars' defaults, and collects every
// error, each naming its variable.
type reader struct {
	getenv func(string) string
	errs   []string
}

func (r *reader) fail(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// env returns the variable, trimmed, or its default.
func (r *reader) env(name string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	for _, e := range envVars {
		if e.name == name && !strings.HasPrefix(e.def, "<") {
			return e.def
		}
	}
	return ""
}

// duration reads a positive duration, at least least and at most most
// (0: no bound).
func (r *reader) duration(name string, least, most time.Duration) time.Duration {
	d, err := time.ParseDuration(r.env(name))
	switch {
	case err != nil || d <= 0:
		r.fail("%s=%q: want a positive duration such as 10s", name, r.getenv(name))
	case least > 0 && d < least:
		r.fail("%s=%q: must be at least %s", name, r.getenv(name), least)
	case most > 0 && d > most:
		r.fail("%s=%q: at most %s", name, r.getenv(name), most)
	}
	return d
}

// boolean reads True or False, as LiteLLM writes them (and 1/0, yes/no).
func (r *reader) boolean(name string) bool {
	switch v := strings.ToLower(r.env(name)); v {
	case "true", "1", "yes":
		return true
	case "false", "0", "no":
	default:
		r.fail("%s=%q: want True or False", name, v)
	}
	return false
}

// integer reads a whole number from least to most; what says what it counts.
func (r *reader) integer(name string, least, most int, what string) int {
	n, err := strconv.Atoi(r.env(name))
	if err != nil || n < least || n > most {
		r.fail("%s=%q: want %d to %d%s", name, r.getenv(name), least, most, what)
	}
	return n
}

// prefixes reads comma-separated IPs or CIDRs.
func (r *reader) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for p := range strings.SplitSeq(r.env(name), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				r.fail("%s=%q: %q is not an IP or a CIDR", name, r.getenv(name), p)
				continue
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		out = append(out, prefix)
	}
	return out
}

// roles reads BETASYNC_ROLES: api, worker, or both.
func (r *reader) roles(name string) (api, worker bool) {
	for role := range strings.SplitSeq(r.env(name), ",") {
		switch strings.TrimSpace(role) {
		case "api":
			api = true
		case "worker":
			worker = true
		case "":
		default:
			r.fail("%s=%q: roles are api and worker", name, r.getenv(name))
		}
	}
	if !api && !worker {
		r.fail("%s=%q: name at least one of api, worker", name, r.getenv(name))
	}
	return api, worker
}

// checkWritableDir creates dir if needed and proves it is writable.
func checkWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".betasync-write-check-*")
	if err != nil {
		return fmt.Errorf("not writable: %w", err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}

// newLogger returns tint's coloured handler on a terminal (or with
// BETASYNC_LOG_FORMAT=text) and JSON otherwise.
func newLogger(c config, w io.Writer) *slog.Logger {
	terminal := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			terminal = true
		}
	}
	if c.logFormat == "text" || (c.logFormat == "auto" && terminal) {
		return slog.New(tint.NewTextHandler(w, &tint.Options{Level: c.logLevel, TimeFormat: time.TimeOnly, NoColor: !terminal}))
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: c.logLevel}))
}

// signing reads the signing seed and the trusted keys. The replica trusts
// its own key, so a worker's own subscriber applies what it signs.
func signing(getenv func(string) string, fail func(string, ...any)) (*betasync.Signer, *betasync.Verifier) {
	seed := strings.TrimSpace(getenv("BETASYNC_SIGNING_SEED"))
	if path := strings.TrimSpace(getenv("BETASYNC_SIGNING_SEED_FILE")); path != "" {
		if seed != "" {
			fail("BETASYNC_SIGNING_SEED and BETASYNC_SIGNING_SEED_FILE: set one, not both")
			return nil, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			fail("BETASYNC_SIGNING_SEED_FILE=%q: %v", path, err)
			return nil, nil
		}
		seed = string(b)
	}
	var signer *betasync.Signer
	var trusted []string
	if seed != "" {
		var err error
		if signer, err = betasync.NewSigner(seed); err != nil {
			fail("BETASYNC_SIGNING_SEED: not an nkeys seed (betasync keygen makes one)")
			return nil, nil
		}
		trusted = append(trusted, signer.PublicKey())
	}
	for k := range strings.SplitSeq(getenv("BETASYNC_TRUSTED_KEYS"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			trusted = append(trusted, k)
		}
	}
	if len(trusted) == 0 {
		return signer, nil
	}
	verifier, err := betasync.NewVerifier(trusted...)
	if err != nil {
		fail("BETASYNC_TRUSTED_KEYS: %v", err)
		return nil, nil
	}
	return signer, verifier
}
