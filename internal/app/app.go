// Package app wires the process together from a validated configuration:
// one redaction set, logger, metrics registry, secret resolver, token
// manager, Graph client and pipeline for the whole process, then the Zeebe
// worker and the management server around them.
package app

import (
	"context"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/camunda/zeebe/clients/go/v8/pkg/zbc"
	"go.uber.org/zap"

	"github.com/o365-mail-connector/o365-mail-connector/internal/auth"
	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
	"github.com/o365-mail-connector/o365-mail-connector/internal/connector"
	"github.com/o365-mail-connector/o365-mail-connector/internal/graph"
	"github.com/o365-mail-connector/o365-mail-connector/internal/logging"
	"github.com/o365-mail-connector/o365-mail-connector/internal/management"
	"github.com/o365-mail-connector/o365-mail-connector/internal/metrics"
	"github.com/o365-mail-connector/o365-mail-connector/internal/operations"
	"github.com/o365-mail-connector/o365-mail-connector/internal/redact"
	"github.com/o365-mail-connector/o365-mail-connector/internal/secrets"
	"github.com/o365-mail-connector/o365-mail-connector/internal/worker"
)

// Options are what tests and the sandbox change beyond the configuration.
type Options struct {
	LogOutput  io.Writer                               // default stderr
	LookupEnv  func(string) (string, bool)             // default os.LookupEnv (secrets)
	Operations map[string]operations.Operation         // default operations.Registry()
	Ready      func(mgmtAddr string)                   // called once the management server listens
	Client     func(config.Config) (zbc.Client, error) // default worker.NewClient
	// GraphTransport performs the Graph client's HTTP exchanges (default:
	// the client's tuned transport); tests wrap one to watch the wire.
	GraphTransport http.RoundTripper
}

// Runtime is a built, not yet running, process.
type Runtime struct {
	Config   config.Config
	Log      *zap.Logger
	Metrics  *metrics.Metrics
	Redact   *redact.Set
	Pipeline *connector.Pipeline
	opts     Options
}

// Build creates the process's shared parts.
func Build(cfg config.Config, opts Options) (*Runtime, error) {
	set := &redact.Set{}
	set.Add(cfg.ZeebeClientSecret)
	log, err := logging.New(opts.LogOutput, cfg.LogLevel, cfg.LogFormat, set)
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.Operations == nil {
		opts.Operations = operations.Registry()
	}
	g, err := graph.New(graph.Config{
		BaseURL:            cfg.GraphBaseURL,
		Timeout:            cfg.GraphTimeout,
		MailboxConcurrency: cfg.GraphMailboxConcurrency,
		MaxResponseBytes:   cfg.GraphMaxResponseBytes,
		Metrics:            m,
		Logger:             log,
		Redactor:           set,
		Transport:          opts.GraphTransport,
	})
	if err != nil {
		return nil, err
	}
	p := connector.New(connector.Deps{
		Secrets: secrets.New(secrets.Config{EnvPrefix: cfg.SecretsEnvPrefix, Dir: cfg.SecretsDir, LookupEnv: opts.LookupEnv, Redactor: set}),
		Auth: auth.NewManager(auth.Config{
			AllowedHosts: cfg.OAuthAllowedHosts, Redactor: set, Metrics: m, Logger: log.Named("auth"),
		}),
		Graph:      g,
		Operations: opts.Operations,
		Redact:     set,
		Log:        log,
	})
	return &Runtime{Config: cfg, Log: log, Metrics: m, Redact: set, Pipeline: p, opts: opts}, nil
}

// Run serves jobs until ctx is canceled, then shuts down gracefully.
func (r *Runtime) Run(ctx context.Context) error {
	cfg := r.Config
	newClient := r.opts.Client
	if newClient == nil {
		newClient = worker.NewClient
		changed, err := worker.AlignClientEnv(cfg, worker.OSEnv{})
		if err != nil {
			return err
		}
		if len(changed) > 0 {
			r.Log.Warn("environment variables that the Zeebe client reads itself were set to the resolved configuration",
				zap.Strings("variables", changed))
		}
	}
	client, err := newClient(cfg)
	if err != nil {
		return err
	}
	defer client.Close()

	ready := management.NewReadiness(15 * time.Second)
	probeCtx, stopProbe := context.WithCancel(context.Background())
	defer stopProbe()
	go ready.Probe(probeCtx, client, 5*time.Second, r.Log.Named("readiness"))

	if cfg.ManagementAddr != "" {
		srv, err := management.Listen(cfg.ManagementAddr, ready, r.Metrics, r.Log)
		if err != nil {
			return err
		}
		defer srv.Close()
		if r.opts.Ready != nil {
			r.opts.Ready(srv.Addr())
		}
		r.Log.Info("management server listening", zap.String("addr", srv.Addr()))
	}

	w := worker.New(client, worker.Config{
		JobType: cfg.JobType, WorkerName: cfg.WorkerName,
		MaxJobsActive: cfg.MaxJobsActive, Concurrency: cfg.Concurrency,
		JobTimeout: cfg.JobTimeout, PollInterval: cfg.PollInterval, RequestTimeout: cfg.RequestTimeout,
		StreamEnabled: cfg.StreamEnabled, ShutdownGrace: cfg.ShutdownGrace,
	}, r.Pipeline.Handle, r.Log, r.Metrics)
	r.Log.Info("worker started", zap.String("jobType", cfg.JobType), zap.String("gateway", cfg.ZeebeAddress),
		zap.Int("maxJobsActive", cfg.MaxJobsActive), zap.Int("concurrency", cfg.Concurrency))
	err = w.Run(ctx)
	_ = r.Log.Sync()
	return err
}
