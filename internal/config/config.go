// Package config holds the operator's settings (contract section 6): their
// names, defaults and validation, in one table so that flags, environment,
// the YAML file, `config` printing and the README cannot disagree.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Setting describes one configuration variable.
type Setting struct {
	Env     string // the environment variable, also the YAML key
	Default string
	Help    string
	Secret  bool // printed as *** by `config`
}

// Flag is the command-line flag of the setting: ZEEBE_ADDRESS → --zeebe-address.
func (s Setting) Flag() string { return strings.ReplaceAll(strings.ToLower(s.Env), "_", "-") }

// Settings is every setting of contract section 6, in README order.
var Settings = []Setting{
	{Env: "ZEEBE_ADDRESS", Default: "localhost:26500", Help: "Zeebe gateway address (host:port)"},
	{Env: "ZEEBE_INSECURE_CONNECTION", Default: "false", Help: "plaintext gRPC instead of TLS"},
	{Env: "ZEEBE_CA_CERTIFICATE_PATH", Help: "PEM file of a custom CA for the gateway's TLS certificate"},
	{Env: "ZEEBE_CLIENT_ID", Help: "OAuth client id for the gateway (Camunda SaaS / Identity)"},
	{Env: "ZEEBE_CLIENT_SECRET", Help: "OAuth client secret for the gateway", Secret: true},
	{Env: "ZEEBE_AUTHORIZATION_SERVER_URL", Help: "OAuth token URL for the gateway"},
	{Env: "ZEEBE_TOKEN_AUDIENCE", Help: "OAuth audience for the gateway token"},
	{Env: "ZEEBE_TOKEN_SCOPE", Help: "OAuth scope for the gateway token"},
	{Env: "CONNECTOR_JOB_TYPE", Default: "o365-mail:1", Help: "job type the worker subscribes to"},
	{Env: "CONNECTOR_WORKER_NAME", Help: "worker name shown in Operate (default: host name)"},
	{Env: "CONNECTOR_MAX_JOBS_ACTIVE", Default: "32", Help: "jobs activated and not yet finished, at most (1 to 10000)"},
	{Env: "CONNECTOR_CONCURRENCY", Default: "16", Help: "handlers running at once (1 to 10000)"},
	{Env: "CONNECTOR_JOB_TIMEOUT", Default: "5m", Help: "job lock: after it the broker hands the job to another worker"},
	{Env: "CONNECTOR_POLL_INTERVAL", Default: "100ms", Help: "pause between polls that found no job"},
	{Env: "CONNECTOR_REQUEST_TIMEOUT", Default: "10s", Help: "long-poll duration of one activation request"},
	{Env: "CONNECTOR_STREAM_ENABLED", Default: "false", Help: "also receive jobs pushed by the gateway (job streaming)"},
	{Env: "CONNECTOR_SHUTDOWN_GRACE", Default: "30s", Help: "how long running jobs may take to finish on SIGTERM"},
	{Env: "GRAPH_BASE_URL", Default: "https://graph.microsoft.com/v1.0", Help: "Microsoft Graph base URL (national clouds)"},
	{Env: "GRAPH_TIMEOUT", Default: "30s", Help: "timeout of one Graph request"},
	{Env: "GRAPH_MAILBOX_CONCURRENCY", Default: "4", Help: "Graph requests in flight per mailbox, across all jobs"},
	{Env: "GRAPH_MAX_RESPONSE_BYTES", Default: "3MiB", Help: "larger Graph responses fail with RESPONSE_TOO_LARGE"},
	{Env: "OAUTH_ALLOWED_HOSTS", Default: "login.microsoftonline.com,login.microsoftonline.us,login.chinacloudapi.cn", Help: "token endpoint hosts jobs may use (loopback is always allowed)"},
	{Env: "SECRETS_ENV_PREFIX", Default: "SECRET_", Help: "prefix of environment variables that hold {{secrets.NAME}}"},
	{Env: "SECRETS_DIR", Help: "directory with one file per secret (Kubernetes secret volume)"},
	{Env: "CONNECTOR_GC_HEAP_FLOOR", Default: "16MiB", Help: "while busy, garbage collection waits for this much heap (0: Go's default; ignored when GOGC is set)"},
	{Env: "CONNECTOR_MEMORY_LIMIT_RATIO", Default: "0.9", Help: "Go's memory limit as a share of the container's memory limit (0: off; ignored when GOMEMLIMIT is set)"},
	{Env: "MANAGEMENT_ADDR", Default: ":8080", Help: "address of /healthz, /readyz and /metrics (empty: off)"},
	{Env: "LOG_LEVEL", Default: "info", Help: "debug, info, warn or error"},
	{Env: "LOG_FORMAT", Default: "json", Help: "json or console"},
}

// Config is the validated configuration.
type Config struct {
	ZeebeAddress            string
	ZeebeInsecure           bool
	ZeebeCACertificatePath  string
	ZeebeClientID           string
	ZeebeClientSecret       string
	ZeebeAuthServerURL      string
	ZeebeTokenAudience      string
	ZeebeTokenScope         string
	JobType                 string
	WorkerName              string
	MaxJobsActive           int
	Concurrency             int
	JobTimeout              time.Duration
	PollInterval            time.Duration
	RequestTimeout          time.Duration
	StreamEnabled           bool
	ShutdownGrace           time.Duration
	GraphBaseURL            string
	GraphTimeout            time.Duration
	GraphMailboxConcurrency int
	GraphMaxResponseBytes   int64
	OAuthAllowedHosts       []string
	SecretsEnvPrefix        string
	SecretsDir              string
	GCHeapFloor             int64
	MemoryLimitRatio        float64
	ManagementAddr          string
	LogLevel                string
	LogFormat               string

	raw map[string]string
}

// Defaults is the configuration with every default, for tests and the sandbox.
func Defaults() Config {
	raw := map[string]string{}
	for _, s := range Settings {
		raw[s.Env] = s.Default
	}
	c, err := parse(raw)
	if err != nil {
		panic("config defaults do not validate: " + err.Error())
	}
	return c
}

// RegisterFlags adds one flag per setting, plus --config.
func RegisterFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML file with settings (keys as the environment variable names)")
	for _, s := range Settings {
		fs.String(s.Flag(), "", s.Help+" (env "+s.Env+")")
	}
}

// Load resolves every setting: flag over environment over file over default.
// lookupEnv is os.LookupEnv outside tests.
func Load(fs *pflag.FlagSet, lookupEnv func(string) (string, bool)) (Config, error) {
	v := viper.New()
	if fs != nil {
		if f := fs.Lookup("config"); f != nil && f.Value.String() != "" {
			v.SetConfigFile(f.Value.String())
			v.SetConfigType("yaml")
			if err := v.ReadInConfig(); err != nil {
				return Config{}, &Error{Problems: []string{fmt.Sprintf("--config: cannot read %s: %v", f.Value.String(), err)}}
			}
		}
	}
	raw := map[string]string{}
	var fileProblems []string
	known := map[string]bool{}
	for _, s := range Settings {
		known[strings.ToLower(s.Env)] = true
	}
	for _, k := range v.AllKeys() {
		if !known[k] {
			fileProblems = append(fileProblems, fmt.Sprintf("--config: unknown setting %q (expected one of the names in README's configuration table)", k))
		}
	}
	for _, s := range Settings {
		val := s.Default
		if v.IsSet(s.Env) {
			switch v.Get(s.Env).(type) {
			case []any, map[string]any:
				// GetString would make it "" without a word.
				fileProblems = append(fileProblems, fmt.Sprintf("--config: %s: expected a single value (a list as one comma-separated string), got a YAML list or map", s.Env))
			default:
				val = v.GetString(s.Env)
			}
		}
		if e, ok := lookupEnv(s.Env); ok {
			val = e
		}
		if fs != nil {
			if f := fs.Lookup(s.Flag()); f != nil && f.Changed {
				val = f.Value.String()
			}
		}
		raw[s.Env] = strings.TrimSpace(val)
	}
	c, err := parse(raw)
	if len(fileProblems) > 0 {
		var ce *Error
		if errors.As(err, &ce) {
			ce.Problems = append(fileProblems, ce.Problems...)
			return c, ce
		}
		return c, &Error{Problems: fileProblems}
	}
	return c, err
}

// MaxCount bounds CONNECTOR_MAX_JOBS_ACTIVE, CONNECTOR_CONCURRENCY and
// GRAPH_MAILBOX_CONCURRENCY: far above any useful value (1,000 jobs in
// flight take about 100 MiB), far below what would exhaust memory.
const MaxCount = 10_000

// Error lists every configuration problem, one per line.
type Error struct{ Problems []string }

func (e *Error) Error() string { return strings.Join(e.Problems, "\n") }

func parse(raw map[string]string) (Config, error) {
	var p []string
	bad := func(name, expected, got string) {
		p = append(p, fmt.Sprintf("%s: expected %s, got %q", name, expected, got))
	}
	boolean := func(name string) bool {
		b, err := strconv.ParseBool(raw[name])
		if err != nil {
			bad(name, "true or false", raw[name])
		}
		return b
	}
	// Counts size queues and goroutine pools, so a typo such as 9999999999
	// must not reach them.
	count := func(name string, max int) int {
		n, err := strconv.Atoi(raw[name])
		if err != nil || n < 1 || n > max {
			bad(name, fmt.Sprintf("a whole number from 1 to %d", max), raw[name])
		}
		return n
	}
	duration := func(name string, min time.Duration) time.Duration {
		d, err := time.ParseDuration(raw[name])
		if err != nil || d < min {
			bad(name, fmt.Sprintf("a duration such as 30s or 5m, at least %s", min), raw[name])
		}
		return d
	}
	c := Config{
		ZeebeAddress:            raw["ZEEBE_ADDRESS"],
		ZeebeInsecure:           boolean("ZEEBE_INSECURE_CONNECTION"),
		ZeebeCACertificatePath:  raw["ZEEBE_CA_CERTIFICATE_PATH"],
		ZeebeClientID:           raw["ZEEBE_CLIENT_ID"],
		ZeebeClientSecret:       raw["ZEEBE_CLIENT_SECRET"],
		ZeebeAuthServerURL:      raw["ZEEBE_AUTHORIZATION_SERVER_URL"],
		ZeebeTokenAudience:      raw["ZEEBE_TOKEN_AUDIENCE"],
		ZeebeTokenScope:         raw["ZEEBE_TOKEN_SCOPE"],
		JobType:                 raw["CONNECTOR_JOB_TYPE"],
		WorkerName:              raw["CONNECTOR_WORKER_NAME"],
		MaxJobsActive:           count("CONNECTOR_MAX_JOBS_ACTIVE", MaxCount),
		Concurrency:             count("CONNECTOR_CONCURRENCY", MaxCount),
		JobTimeout:              duration("CONNECTOR_JOB_TIMEOUT", time.Second),
		PollInterval:            duration("CONNECTOR_POLL_INTERVAL", time.Millisecond),
		RequestTimeout:          duration("CONNECTOR_REQUEST_TIMEOUT", 0),
		StreamEnabled:           boolean("CONNECTOR_STREAM_ENABLED"),
		ShutdownGrace:           duration("CONNECTOR_SHUTDOWN_GRACE", 0),
		GraphBaseURL:            strings.TrimRight(raw["GRAPH_BASE_URL"], "/"),
		GraphTimeout:            duration("GRAPH_TIMEOUT", time.Millisecond),
		GraphMailboxConcurrency: count("GRAPH_MAILBOX_CONCURRENCY", MaxCount),
		SecretsEnvPrefix:        raw["SECRETS_ENV_PREFIX"],
		SecretsDir:              raw["SECRETS_DIR"],
		ManagementAddr:          raw["MANAGEMENT_ADDR"],
		LogLevel:                strings.ToLower(raw["LOG_LEVEL"]),
		LogFormat:               strings.ToLower(raw["LOG_FORMAT"]),
		raw:                     raw,
	}
	if c.ZeebeAddress == "" {
		bad("ZEEBE_ADDRESS", "host:port of the Zeebe gateway", "")
	} else if _, port, err := net.SplitHostPort(c.ZeebeAddress); err != nil || port == "" {
		bad("ZEEBE_ADDRESS", "host:port of the Zeebe gateway", c.ZeebeAddress)
	}
	if c.ZeebeCACertificatePath != "" {
		if _, err := os.Stat(c.ZeebeCACertificatePath); err != nil {
			bad("ZEEBE_CA_CERTIFICATE_PATH", "a readable PEM file", c.ZeebeCACertificatePath)
		}
	}
	if c.ZeebeClientID != "" {
		if c.ZeebeClientSecret == "" {
			p = append(p, "ZEEBE_CLIENT_SECRET: expected a value when ZEEBE_CLIENT_ID is set")
		}
		if c.ZeebeAuthServerURL == "" {
			p = append(p, "ZEEBE_AUTHORIZATION_SERVER_URL: expected a URL when ZEEBE_CLIENT_ID is set")
		}
		if c.ZeebeTokenAudience == "" {
			p = append(p, "ZEEBE_TOKEN_AUDIENCE: expected the gateway's audience (e.g. zeebe.camunda.io) when ZEEBE_CLIENT_ID is set")
		}
	}
	if c.JobType == "" {
		bad("CONNECTOR_JOB_TYPE", "a job type such as o365-mail:1", "")
	}
	if c.WorkerName == "" {
		c.WorkerName, _ = os.Hostname()
		if c.WorkerName == "" {
			c.WorkerName = "o365-mail-connector"
		}
	}
	if err := CheckURL(c.GraphBaseURL); err != nil {
		bad("GRAPH_BASE_URL", "an https:// URL (http:// only for loopback hosts) "+err.Error(), c.GraphBaseURL)
	}
	n, err := ParseBytes(raw["GRAPH_MAX_RESPONSE_BYTES"])
	if err != nil || n < 1024 {
		bad("GRAPH_MAX_RESPONSE_BYTES", "a size such as 3MiB or 4000000, at least 1KiB", raw["GRAPH_MAX_RESPONSE_BYTES"])
	}
	c.GraphMaxResponseBytes = n
	if c.GCHeapFloor, err = ParseBytes(raw["CONNECTOR_GC_HEAP_FLOOR"]); err != nil || c.GCHeapFloor < 0 {
		bad("CONNECTOR_GC_HEAP_FLOOR", "a size such as 16MiB, or 0 for Go's default", raw["CONNECTOR_GC_HEAP_FLOOR"])
	}
	if r, err := strconv.ParseFloat(raw["CONNECTOR_MEMORY_LIMIT_RATIO"], 64); err != nil || !(r >= 0 && r <= 1) {
		bad("CONNECTOR_MEMORY_LIMIT_RATIO", "a share between 0 and 1 such as 0.9, or 0 for no limit", raw["CONNECTOR_MEMORY_LIMIT_RATIO"])
	} else {
		c.MemoryLimitRatio = r
	}
	for _, h := range strings.Split(raw["OAUTH_ALLOWED_HOSTS"], ",") {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			if strings.ContainsAny(h, "/:@ ") {
				bad("OAUTH_ALLOWED_HOSTS", "a comma-separated list of host names", h)
			}
			c.OAuthAllowedHosts = append(c.OAuthAllowedHosts, h)
		}
	}
	if c.SecretsDir != "" {
		if st, err := os.Stat(c.SecretsDir); err != nil || !st.IsDir() {
			bad("SECRETS_DIR", "an existing directory", c.SecretsDir)
		}
	}
	if c.ManagementAddr != "" {
		if _, _, err := net.SplitHostPort(c.ManagementAddr); err != nil {
			bad("MANAGEMENT_ADDR", "[host]:port such as :8080", c.ManagementAddr)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", "debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		bad("LOG_FORMAT", "json or console", c.LogFormat)
	}
	if len(p) > 0 {
		return c, &Error{Problems: p}
	}
	return c, nil
}

// CheckURL accepts https:// URLs, and http:// ones only for loopback hosts.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("(not an absolute URL)")
	}
	if u.User != nil {
		return errors.New("(user info is not allowed)")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("(http:// is only allowed for loopback hosts)")
	}
	return errors.New("(scheme must be https)")
}

// IsLoopback reports whether host is localhost, 127.0.0.0/8 or ::1.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseBytes reads sizes such as 3MiB, 4MB, 512KiB, 1000.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000_000}, {"GB", 1000_000_000}, {"B", 1}}
	mult := int64(1)
	// Binary suffixes come before decimal ones and "B" last, so the first match is the right one.
	for _, u := range units {
		if strings.HasSuffix(strings.ToLower(s), strings.ToLower(u.suffix)) {
			mult = u.mult
			s = strings.TrimSpace(s[:len(s)-len(u.suffix)])
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	return n * mult, nil
}

// Print writes the effective configuration, secrets as ***, in Settings order.
func (c Config) Print() string {
	var b strings.Builder
	for _, s := range Settings {
		v := c.raw[s.Env]
		if s.Env == "CONNECTOR_WORKER_NAME" {
			v = c.WorkerName
		}
		if s.Secret && v != "" {
			v = "***"
		}
		fmt.Fprintf(&b, "%s=%s\n", s.Env, v)
	}
	return b.String()
}

// Names lists the setting names, sorted; used by tests.
func Names() []string {
	out := make([]string, 0, len(Settings))
	for _, s := range Settings {
		out = append(out, s.Env)
	}
	sort.Strings(out)
	return out
}
