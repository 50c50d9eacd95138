// Package management serves /healthz, /readyz and /metrics for probes and
// Prometheus.
package management

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/camunda/zeebe/clients/go/v8/pkg/zbc"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/o365-mail-connector/o365-mail-connector/internal/metrics"
)

// Readiness is "the gateway answered Topology recently, and the latest
// probe succeeded": a gateway that stops answering makes the pod unready at
// the next probe, not only when the window runs out.
type Readiness struct {
	last   atomic.Int64 // unix nanos of the last good answer
	maxAge time.Duration
	now    func() time.Time
}

func NewReadiness(maxAge time.Duration) *Readiness {
	return &Readiness{maxAge: maxAge, now: time.Now}
}

// Mark records a good Topology answer.
func (r *Readiness) Mark() { r.last.Store(r.now().UnixNano()) }

// Unmark records a failed probe.
func (r *Readiness) Unmark() { r.last.Store(0) }

// Ready reports whether the last good answer is recent.
func (r *Readiness) Ready() bool {
	l := r.last.Load()
	return l != 0 && r.now().Sub(time.Unix(0, l)) <= r.maxAge
}

// Probe asks for the topology at once and then every interval until ctx ends.
func (r *Readiness) Probe(ctx context.Context, client zbc.Client, interval time.Duration, log *zap.Logger) {
	failing := false
	for {
		c, cancel := context.WithTimeout(ctx, interval)
		_, err := client.NewTopologyCommand().Send(c)
		cancel()
		switch {
		case err == nil:
			r.Mark()
			if failing {
				log.Info("gateway reachable again")
			}
			failing = false
		case ctx.Err() == nil:
			r.Unmark()
			if !failing {
				log.Warn("gateway topology request failed", zap.Error(err))
			}
			failing = true
		}
		// Probe faster while not ready, so that readiness follows a
		// restarted gateway within a fraction of a second.
		wait := interval
		if failing || !r.Ready() {
			wait = min(interval, 200*time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Server is the management HTTP server.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen binds addr (":0" picks a free port) and serves until Close.
func Listen(addr string, ready *Readiness, m *metrics.Metrics, log *zap.Logger) (*Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if ready == nil || !ready.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("gateway not reachable\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	if m != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("management server stopped", zap.Error(err))
		}
	}()
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
