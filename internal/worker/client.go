package worker

import (
	"os"
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
// at 1 s brings reconnection within about 2 s (zeebe-client-notes.md).
func NewClient(c config.Config) (zbc.Client, error) {
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
