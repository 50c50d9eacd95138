package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func flags(t *testing.T, args ...string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	RegisterFlags(fs)
	require.NoError(t, fs.Parse(args))
	return fs
}

func TestDefaultsMatchTheContract(t *testing.T) {
	c, err := Load(flags(t), env(nil))
	require.NoError(t, err)
	require.Equal(t, "localhost:26500", c.ZeebeAddress)
	require.Equal(t, "o365-mail:1", c.JobType)
	require.Equal(t, 32, c.MaxJobsActive)
	require.Equal(t, 16, c.Concurrency)
	require.Equal(t, 5*time.Minute, c.JobTimeout)
	require.Equal(t, 100*time.Millisecond, c.PollInterval)
	require.Equal(t, 10*time.Second, c.RequestTimeout)
	require.False(t, c.StreamEnabled)
	require.Equal(t, 30*time.Second, c.ShutdownGrace)
	require.Equal(t, "https://graph.microsoft.com/v1.0", c.GraphBaseURL)
	require.Equal(t, 4, c.GraphMailboxConcurrency)
	require.Equal(t, int64(3<<20), c.GraphMaxResponseBytes)
	require.Equal(t, []string{"login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn"}, c.OAuthAllowedHosts)
	require.Equal(t, "SECRET_", c.SecretsEnvPrefix)
	require.Equal(t, ":8080", c.ManagementAddr)
	require.NotEmpty(t, c.WorkerName, "host name by default")
	require.Equal(t, Defaults().JobType, c.JobType)
}

func TestPrecedenceFlagOverEnvOverFileOverDefault(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(file, []byte("CONNECTOR_CONCURRENCY: 3\nconnector_max_jobs_active: 7\nGRAPH_TIMEOUT: 5s\n"), 0o600))

	c, err := Load(flags(t, "--config", file), env(nil))
	require.NoError(t, err)
	require.Equal(t, 3, c.Concurrency)
	require.Equal(t, 7, c.MaxJobsActive)

	c, err = Load(flags(t, "--config", file), env(map[string]string{"CONNECTOR_CONCURRENCY": "5"}))
	require.NoError(t, err)
	require.Equal(t, 5, c.Concurrency, "environment over file")
	require.Equal(t, 5*time.Second, c.GraphTimeout, "file over default")

	c, err = Load(flags(t, "--config", file, "--connector-concurrency", "9"), env(map[string]string{"CONNECTOR_CONCURRENCY": "5"}))
	require.NoError(t, err)
	require.Equal(t, 9, c.Concurrency, "flag over environment")
}

func TestEveryProblemOnItsOwnLine(t *testing.T) {
	_, err := Load(flags(t), env(map[string]string{
		"ZEEBE_ADDRESS":             "nohostport",
		"CONNECTOR_CONCURRENCY":     "zero",
		"CONNECTOR_JOB_TIMEOUT":     "5 minutes",
		"GRAPH_BASE_URL":            "http://graph.example.com/v1.0",
		"GRAPH_MAX_RESPONSE_BYTES":  "lots",
		"LOG_FORMAT":                "xml",
		"ZEEBE_CLIENT_ID":           "id",
		"ZEEBE_INSECURE_CONNECTION": "maybe",
	}))
	var ce *Error
	require.ErrorAs(t, err, &ce)
	text := ce.Error()
	for _, name := range []string{"ZEEBE_ADDRESS", "CONNECTOR_CONCURRENCY", "CONNECTOR_JOB_TIMEOUT", "GRAPH_BASE_URL",
		"GRAPH_MAX_RESPONSE_BYTES", "LOG_FORMAT", "ZEEBE_CLIENT_SECRET", "ZEEBE_AUTHORIZATION_SERVER_URL", "ZEEBE_TOKEN_AUDIENCE", "ZEEBE_INSECURE_CONNECTION"} {
		require.Contains(t, text, name+":")
	}
	require.Len(t, ce.Problems, 10)
	for _, p := range ce.Problems {
		require.NotContains(t, p, "\n")
	}
}

func TestCountsAreBounded(t *testing.T) {
	_, err := Load(flags(t), env(map[string]string{
		"CONNECTOR_MAX_JOBS_ACTIVE": "9999999999", "CONNECTOR_CONCURRENCY": "10001", "GRAPH_MAILBOX_CONCURRENCY": "0",
	}))
	var ce *Error
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Problems, 3)
	require.Contains(t, ce.Error(), `CONNECTOR_MAX_JOBS_ACTIVE: expected a whole number from 1 to 10000, got "9999999999"`)
	c, err := Load(flags(t), env(map[string]string{"CONNECTOR_MAX_JOBS_ACTIVE": "10000"}))
	require.NoError(t, err)
	require.Equal(t, 10000, c.MaxJobsActive)
}

// A YAML list where a comma-separated string belongs is refused, not read
// as an empty setting.
func TestFileListIsRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(file, []byte("OAUTH_ALLOWED_HOSTS:\n  - login.example.com\n  - idp.example.com\n"), 0o600))
	_, err := Load(flags(t, "--config", file), env(nil))
	require.ErrorContains(t, err, "--config: OAUTH_ALLOWED_HOSTS: expected a single value (a list as one comma-separated string), got a YAML list or map")

	require.NoError(t, os.WriteFile(file, []byte("OAUTH_ALLOWED_HOSTS: login.example.com,idp.example.com\n"), 0o600))
	c, err := Load(flags(t, "--config", file), env(nil))
	require.NoError(t, err)
	require.Equal(t, []string{"login.example.com", "idp.example.com"}, c.OAuthAllowedHosts)
}

func TestUnknownFileKeyIsReported(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(file, []byte("ZEEBE_ADRESS: x:1\n"), 0o600))
	_, err := Load(flags(t, "--config", file), env(nil))
	require.ErrorContains(t, err, `unknown setting "zeebe_adress"`)
}

func TestPrintMasksSecrets(t *testing.T) {
	c, err := Load(flags(t), env(map[string]string{
		"ZEEBE_CLIENT_ID": "id", "ZEEBE_CLIENT_SECRET": "very-secret-value", "ZEEBE_AUTHORIZATION_SERVER_URL": "https://login.example/token",
		"ZEEBE_TOKEN_AUDIENCE": "zeebe.camunda.io",
	}))
	require.NoError(t, err)
	out := c.Print()
	require.NotContains(t, out, "very-secret-value")
	require.Contains(t, out, "ZEEBE_CLIENT_SECRET=***")
	require.Equal(t, len(Settings), strings.Count(out, "\n"))
}

func TestURLPolicyAndSizes(t *testing.T) {
	for _, ok := range []string{"https://graph.microsoft.us/v1.0", "http://127.0.0.1:8080/v1.0", "http://localhost/v1.0", "http://[::1]:1/v1.0"} {
		require.NoError(t, CheckURL(ok), ok)
	}
	for _, bad := range []string{"http://10.0.0.1/v1.0", "ftp://x/", "https://user:pw@graph.microsoft.com/", "/v1.0"} {
		require.Error(t, CheckURL(bad), bad)
	}
	for in, want := range map[string]int64{"3MiB": 3 << 20, "4MB": 4_000_000, "512KiB": 512 << 10, "1000": 1000, "10B": 10} {
		got, err := ParseBytes(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	_, err := ParseBytes("-1")
	require.Error(t, err)
}

func TestReadmeDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	for _, s := range Settings {
		require.Contains(t, string(readme), "`"+s.Env+"`", "README's configuration table")
		require.Contains(t, string(readme), "`--"+s.Flag()+"`")
	}
}

func TestMemoryLimitRatio(t *testing.T) {
	for raw, want := range map[string]float64{"0.9": 0.9, "0": 0, "1": 1, " 0.75 ": 0.75} {
		c, err := Load(flags(t), env(map[string]string{"CONNECTOR_MEMORY_LIMIT_RATIO": raw}))
		require.NoError(t, err, raw)
		require.Equal(t, want, c.MemoryLimitRatio, raw)
	}
	require.Equal(t, 0.9, Defaults().MemoryLimitRatio)
	for _, raw := range []string{"-0.1", "1.5", "NaN", "90%", ""} {
		_, err := Load(flags(t), env(map[string]string{"CONNECTOR_MEMORY_LIMIT_RATIO": raw}))
		var ce *Error
		require.ErrorAs(t, err, &ce, raw)
		require.Len(t, ce.Problems, 1)
		require.Contains(t, ce.Problems[0], "CONNECTOR_MEMORY_LIMIT_RATIO:")
	}
}

func TestGCHeapFloor(t *testing.T) {
	for raw, want := range map[string]int64{"16MiB": 16 << 20, "0": 0, "64 MiB": 64 << 20, "8000000": 8000000} {
		c, err := Load(flags(t), env(map[string]string{"CONNECTOR_GC_HEAP_FLOOR": raw}))
		require.NoError(t, err, raw)
		require.Equal(t, want, c.GCHeapFloor, raw)
	}
	require.Equal(t, int64(16<<20), Defaults().GCHeapFloor)
	for _, raw := range []string{"-1", "lots", "16 parsecs"} {
		_, err := Load(flags(t), env(map[string]string{"CONNECTOR_GC_HEAP_FLOOR": raw}))
		var ce *Error
		require.ErrorAs(t, err, &ce, raw)
		require.Len(t, ce.Problems, 1)
		require.Contains(t, ce.Problems[0], "CONNECTOR_GC_HEAP_FLOOR:")
	}
}
