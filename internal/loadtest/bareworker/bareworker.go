// Package bareworker is the load test's baseline: a bare zbc JobWorker that
// makes one plain net/http request per job. It is its own package and binary
// (cmd/loadtest-baseline), built like the connector, so that its memory and
// CPU figures carry nothing of the load command, the simulators or the
// connector.
package bareworker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/camunda/zeebe/clients/go/v8/pkg/entities"
	"github.com/camunda/zeebe/clients/go/v8/pkg/worker"
	"github.com/camunda/zeebe/clients/go/v8/pkg/zbc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/o365-mail-connector/o365-mail-connector/internal/job"
)

// FetchVariables are the connector's fetched variables; the bare worker asks
// for the same so that both move the same bytes.
var FetchVariables = job.Variables

// Config is the bare worker's setup, passed through the environment of its
// process.
type Config struct {
	JobType       string
	ZeebeAddress  string
	GraphURL      string
	Token         string
	WorkerName    string
	MaxJobsActive int
	Concurrency   int
	PollInterval  time.Duration
	JobTimeout    time.Duration
	// MetricsAddr serves the Go runtime counters (optional).
	MetricsAddr string
	// MailboxConcurrency, when positive, holds the worker to that many
	// Graph requests in flight per mailbox, as the connector holds itself
	// to Graph's limit. The baseline has no such limit (0).
	MailboxConcurrency int
}

// Env renders c as the environment of a bare worker process.
func (c Config) Env() []string {
	return []string{
		"BASELINE_JOB_TYPE=" + c.JobType,
		"ZEEBE_ADDRESS=" + c.ZeebeAddress,
		"ZEEBE_INSECURE_CONNECTION=true",
		"BASELINE_GRAPH_URL=" + c.GraphURL,
		"BASELINE_TOKEN=" + c.Token,
		"BASELINE_WORKER_NAME=" + c.WorkerName,
		"BASELINE_MAX_JOBS_ACTIVE=" + strconv.Itoa(c.MaxJobsActive),
		"BASELINE_CONCURRENCY=" + strconv.Itoa(c.Concurrency),
		"BASELINE_POLL_INTERVAL=" + c.PollInterval.String(),
		"BASELINE_JOB_TIMEOUT=" + c.JobTimeout.String(),
		"BASELINE_METRICS_ADDR=" + c.MetricsAddr,
		"BASELINE_MAILBOX_CONCURRENCY=" + strconv.Itoa(c.MailboxConcurrency),
	}
}

// FromEnv reads what Env wrote.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		JobType:      getenv("BASELINE_JOB_TYPE"),
		ZeebeAddress: getenv("ZEEBE_ADDRESS"),
		GraphURL:     getenv("BASELINE_GRAPH_URL"),
		Token:        getenv("BASELINE_TOKEN"),
		WorkerName:   getenv("BASELINE_WORKER_NAME"),
		MetricsAddr:  getenv("BASELINE_METRICS_ADDR"),
	}
	var err error
	if c.MaxJobsActive, err = strconv.Atoi(getenv("BASELINE_MAX_JOBS_ACTIVE")); err != nil {
		return c, fmt.Errorf("BASELINE_MAX_JOBS_ACTIVE: %w", err)
	}
	if c.Concurrency, err = strconv.Atoi(getenv("BASELINE_CONCURRENCY")); err != nil {
		return c, fmt.Errorf("BASELINE_CONCURRENCY: %w", err)
	}
	if v := getenv("BASELINE_MAILBOX_CONCURRENCY"); v != "" {
		if c.MailboxConcurrency, err = strconv.Atoi(v); err != nil {
			return c, fmt.Errorf("BASELINE_MAILBOX_CONCURRENCY: %w", err)
		}
	}
	if c.PollInterval, err = time.ParseDuration(getenv("BASELINE_POLL_INTERVAL")); err != nil {
		return c, fmt.Errorf("BASELINE_POLL_INTERVAL: %w", err)
	}
	if c.JobTimeout, err = time.ParseDuration(getenv("BASELINE_JOB_TIMEOUT")); err != nil {
		return c, fmt.Errorf("BASELINE_JOB_TIMEOUT: %w", err)
	}
	if c.JobType == "" || c.ZeebeAddress == "" || c.GraphURL == "" || c.Token == "" {
		return c, fmt.Errorf("BASELINE_JOB_TYPE, ZEEBE_ADDRESS, BASELINE_GRAPH_URL and BASELINE_TOKEN are required")
	}
	return c, nil
}

// Run is the bare worker: the least a Zeebe worker for this job type can
// do. A zbc JobWorker whose handler makes one plain GET to
// the job's mailbox and completes the job whatever Graph answered (with
// MailboxConcurrency, after waiting for one of the mailbox's slots). It runs
// until SIGTERM or SIGINT.
func Run(c Config) error {
	client, err := zbc.NewClient(&zbc.ClientConfig{GatewayAddress: c.ZeebeAddress, UsePlaintextConnection: true})
	if err != nil {
		return err
	}
	defer client.Close()
	if c.MetricsAddr != "" {
		srv, err := serveGoStats(c.MetricsAddr)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	// A keep-alive pool as large as the concurrency, as any tuned client
	// would have; the default of 2 idle connections per host would measure
	// connection set-up instead of the worker.
	hc := &http.Client{Transport: &http.Transport{
		MaxIdleConns: c.Concurrency, MaxIdleConnsPerHost: c.Concurrency, IdleConnTimeout: 90 * time.Second,
	}, Timeout: 30 * time.Second}
	slots := newMailboxSlots(c.MailboxConcurrency)
	handler := func(jc worker.JobClient, j entities.Job) {
		ctx := context.Background()
		var v struct {
			Operation struct {
				UserID   string `json:"userId"`
				FolderID string `json:"folderId"`
			} `json:"operation"`
		}
		_ = json.Unmarshal([]byte(j.GetVariables()), &v)
		folder := v.Operation.FolderID
		if folder == "" {
			folder = "inbox"
		}
		u := c.GraphURL + "/users/" + url.PathEscape(v.Operation.UserID) + "/mailFolders/" + url.PathEscape(folder) + "/messages"
		release := slots.acquire(v.Operation.UserID)
		if req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil); err == nil {
			req.Header.Set("Authorization", "Bearer "+c.Token)
			if resp, err := hc.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		release()
		_, _ = jc.NewCompleteJobCommand().JobKey(j.GetKey()).Send(ctx)
	}
	w := client.NewJobWorker().JobType(c.JobType).Handler(handler).
		Name(c.WorkerName).
		MaxJobsActive(c.MaxJobsActive).
		Concurrency(c.Concurrency).
		PollInterval(c.PollInterval).
		Timeout(c.JobTimeout).
		FetchVariables(FetchVariables...).
		Open()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	<-ctx.Done()
	// JobWorker.Close waits for a long poll in flight; the measurement is
	// over by now, so do not let it hold the next run up.
	closed := make(chan struct{})
	go func() { w.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(500 * time.Millisecond):
	}
	return nil
}

// mailboxSlots is the simplest per-mailbox limit: a semaphore per mailbox,
// kept for the life of the process (the load test has few mailboxes).
type mailboxSlots struct {
	n  int
	mu sync.Mutex
	m  map[string]chan struct{}
}

// newMailboxSlots returns nil, no limit, for n ≤ 0.
func newMailboxSlots(n int) *mailboxSlots {
	if n <= 0 {
		return nil
	}
	return &mailboxSlots{n: n, m: map[string]chan struct{}{}}
}

// acquire waits for a slot of the mailbox and returns its release.
func (s *mailboxSlots) acquire(mailbox string) (release func()) {
	if s == nil {
		return func() {}
	}
	key := strings.ToLower(mailbox)
	s.mu.Lock()
	sem := s.m[key]
	if sem == nil {
		sem = make(chan struct{}, s.n)
		s.m[key] = sem
	}
	s.mu.Unlock()
	sem <- struct{}{}
	return func() { <-sem }
}

// serveGoStats exposes the bare worker's Go runtime counters the way the
// connector's management server does.
func serveGoStats(addr string) (*http.Server, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}
