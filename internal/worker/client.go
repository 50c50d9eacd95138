package worker

import (
	"os"
	"strconv"
	"time"

	"github.com/camunda/zeebe/clients/go/v8/pkg/zbc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
)

// NewClient builds the Zeebe client for the configuration: plaintext, TLS or
// TLS with a custom CA, with OAuth when ZEEBE_CLIENT_ID is set.
//
// gRPC's default reconnect backoff grows to 120 s, so a gateway that comes
// back after a minute would wait up to two more for its first job; capping it
// at 1 s brings reconnection within about 2 s (zeebe-client-notes.md). Job
// commands carry their variables without HTML escaping (unescapeVariables),
// and a FailJob learns whether it reached a connection (markAttempt).
func NewClient(c config.Config) (zbc.Client, error) {
	// app.Run aligns the environment first to log what changed; here it
	// keeps any other caller right, and a second pass changes nothing.
	if _, err := AlignClientEnv(c, OSEnv{}); err != nil {
		return nil, err
	}
	zc := &zbc.ClientConfig{
		GatewayAddress:         c.ZeebeAddress,
		UsePlaintextConnection: c.ZeebeInsecure,
		CaCertificatePath:      c.ZeebeCACertificatePath,
		DialOpts: []grpc.DialOption{
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff: backoff.Config{
					BaseDelay:  100 * time.Millisecond,
					Multiplier: 1.6,
					Jitter:     0.2,
					MaxDelay:   time.Second,
				},
				MinConnectTimeout: 2 * time.Second,
			}),
			grpc.WithChainUnaryInterceptor(unescapeVariables, markAttempt),
		},
		UserAgent: "o365-mail-connector",
	}
	if c.ZeebeClientID != "" {
		// The client's own lookup of ZEEBE_CLIENT_CONFIG_PATH is skipped in
		// test binaries; reading it here keeps tests out of $HOME too.
		cache, err := zbc.NewOAuthYamlCredentialsCache(os.Getenv(zbc.OAuthCachePathEnvVar))
		if err != nil {
			return nil, err
		}
		provider, err := zbc.NewOAuthCredentialsProvider(&zbc.OAuthProviderConfig{
			Cache:                  cache,
			ClientID:               c.ZeebeClientID,
			ClientSecret:           c.ZeebeClientSecret,
			Audience:               c.ZeebeTokenAudience,
			Scope:                  c.ZeebeTokenScope,
			AuthorizationServerURL: c.ZeebeAuthServerURL,
		})
		if err != nil {
			return nil, err
		}
		zc.CredentialsProvider = provider
	}
	return zbc.NewClient(zc)
}

// Env is the process environment as AlignClientEnv needs it.
type Env interface {
	LookupEnv(name string) (string, bool)
	Setenv(name, value string) error
	Unsetenv(name string) error
}

// OSEnv is the process environment.
type OSEnv struct{}

func (OSEnv) LookupEnv(name string) (string, bool) { return os.LookupEnv(name) }
func (OSEnv) Setenv(name, value string) error      { return os.Setenv(name, value) }
func (OSEnv) Unsetenv(name string) error           { return os.Unsetenv(name) }

// AlignClientEnv makes the variables that the Zeebe client library reads from
// the environment by itself, over the configuration it is given, say what the
// resolved configuration says. Without it a flag or the config file lost to
// the environment, and ZEEBE_INSECURE_CONNECTION=1 passed validation as true
// while the library, which knows only "true", dialled TLS. ZEEBE_HOST and
// ZEEBE_PORT are not settings of this program but would replace
// ZEEBE_ADDRESS (Kubernetes service links set ZEEBE_PORT=tcp://… for a
// service named zeebe), so they are removed. Only variables that are set are
// touched; it returns their names.
func AlignClientEnv(c config.Config, env Env) ([]string, error) {
	want := []struct{ name, value string }{
		{zbc.GatewayAddressEnvVar, c.ZeebeAddress},
		{zbc.InsecureEnvVar, strconv.FormatBool(c.ZeebeInsecure)},
		{zbc.CaCertificatePath, c.ZeebeCACertificatePath},
		{zbc.OAuthClientIdEnvVar, c.ZeebeClientID},
		{zbc.OAuthClientSecretEnvVar, c.ZeebeClientSecret},
		{zbc.OAuthAuthorizationUrlEnvVar, c.ZeebeAuthServerURL},
		{zbc.OAuthTokenAudienceEnvVar, c.ZeebeTokenAudience},
		{zbc.OAuthTokenScopeEnvVar, c.ZeebeTokenScope},
		{zbc.GatewayHostEnvVar, ""},
		{zbc.GatewayPortEnvVar, ""},
	}
	var changed []string
	for _, w := range want {
		cur, ok := env.LookupEnv(w.name)
		if !ok || cur == w.value {
			continue
		}
		var err error
		if w.value == "" {
			err = env.Unsetenv(w.name)
		} else {
			err = env.Setenv(w.name, w.value)
		}
		if err != nil {
			return changed, err
		}
		changed = append(changed, w.name)
	}
	return changed, nil
}
