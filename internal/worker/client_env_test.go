package worker

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
)

type mapEnv map[string]string

func (m mapEnv) LookupEnv(name string) (string, bool) { v, ok := m[name]; return v, ok }
func (m mapEnv) Setenv(name, value string) error      { m[name] = value; return nil }
func (m mapEnv) Unsetenv(name string) error           { delete(m, name); return nil }

// The Zeebe client library reads these variables itself and lets them win
// over the configuration it is given; they must say what was resolved.
func TestClientEnvFollowsTheResolvedConfiguration(t *testing.T) {
	cfg := config.Defaults()
	cfg.ZeebeAddress = "gateway.example:26500" // from a flag
	cfg.ZeebeInsecure = true                   // from ZEEBE_INSECURE_CONNECTION=1
	cfg.ZeebeClientID = "worker"
	env := mapEnv{
		"ZEEBE_ADDRESS":             "old.example:26500",
		"ZEEBE_INSECURE_CONNECTION": "1", // the library knows only "true"
		"ZEEBE_CLIENT_ID":           "worker",
		"ZEEBE_PORT":                "tcp://10.0.0.11:26500", // a Kubernetes service link
		"UNRELATED":                 "kept",
	}
	changed, err := AlignClientEnv(cfg, env)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"ZEEBE_ADDRESS", "ZEEBE_INSECURE_CONNECTION", "ZEEBE_PORT"}, changed)
	require.Equal(t, mapEnv{
		"ZEEBE_ADDRESS":             "gateway.example:26500",
		"ZEEBE_INSECURE_CONNECTION": "true",
		"ZEEBE_CLIENT_ID":           "worker",
		"UNRELATED":                 "kept",
	}, env)

	// Unset variables stay unset: the configuration reaches the library
	// directly.
	empty := mapEnv{}
	changed, err = AlignClientEnv(cfg, empty)
	require.NoError(t, err)
	require.Empty(t, changed)
	require.Empty(t, empty)
}
