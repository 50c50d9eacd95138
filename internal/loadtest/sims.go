// Package loadtest measures the connector against the in-process
// simulators: the worker runs as a child process (the built binary, or a
// bare zbc JobWorker as the baseline) so that its CPU time and memory can be
// read from /proc without the simulators' share.
package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/o365-mail-connector/o365-mail-connector/internal/auth"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/graphsim"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/identitysim"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

// Names shared by the simulators, the jobs and the workers.
const (
	JobType      = "o365-mail:1"
	Tenant       = "contoso"
	ClientID     = "loadtest-app"
	ClientSecret = "loadtest-client-secret-value"
)

// Sims are the simulators of one measured run.
type Sims struct {
	Zeebe    *zeebesim.Gateway
	Graph    *graphsim.Server
	Identity *identitysim.Server

	front    *http.Server
	graphURL string
	// Time spent inside the Graph simulator's handler, summed over requests:
	// the part of a job's latency that belongs to "Graph", not the worker.
	graphNanos atomic.Int64
	graphCalls atomic.Int64
}

// Mailboxes returns n mailbox addresses.
func Mailboxes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user%04d@contoso.example", i)
	}
	return out
}

// InboxMessages is how many messages each mailbox's inbox holds; the
// listMessages answer is about 1.4 KB per message.
var InboxMessages = 3

// StartSims starts the Zeebe gateway, the identity endpoint and the Graph
// simulator with the given mailboxes (each with InboxMessages inbox
// messages), a fixed Graph latency and Graph's per-mailbox concurrency limit
// of 4.
func StartSims(mailboxes []string, latency time.Duration) (*Sims, error) {
	id, err := identitysim.New()
	if err != nil {
		return nil, err
	}
	id.RegisterClient(ClientID, ClientSecret)
	g, err := graphsim.New(
		graphsim.WithTokenCheck(id.GraphTokenCheck),
		graphsim.WithLatency(latency),
		// The log is only read for spot checks; a small one keeps the
		// load generator's own memory flat.
		graphsim.WithRequestLog(2000, 256),
	)
	if err != nil {
		id.Close()
		return nil, err
	}
	now := time.Now().UTC()
	for _, m := range mailboxes {
		g.AddMailbox(m)
		for i := 0; i < InboxMessages; i++ {
			g.AddMessage(m, "inbox", graphsim.Message{
				Subject: fmt.Sprintf("Invoice %d", i), BodyContent: "Hello, please find the invoice attached.",
				From:             graphsim.Recipient{Name: "Dave", Address: "dave@fabrikam.example"},
				To:               []graphsim.Recipient{{Address: m}},
				ReceivedDateTime: now.Add(-time.Duration(i) * time.Hour),
			})
		}
	}
	z, err := zeebesim.Start()
	if err != nil {
		g.Close()
		id.Close()
		return nil, err
	}
	s := &Sims{Zeebe: z, Graph: g, Identity: id}
	// A front server times the simulator's handler, so that "time inside
	// Graph" excludes the client's connection handling.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return nil, err
	}
	s.front = &http.Server{Handler: http.HandlerFunc(s.serveGraph), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = s.front.Serve(ln) }()
	s.graphURL = "http://" + ln.Addr().String() + "/v1.0"
	return s, nil
}

func (s *Sims) serveGraph(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.Graph.ServeHTTP(w, r)
	s.graphNanos.Add(int64(time.Since(start)))
	s.graphCalls.Add(1)
}

// GraphURL is the base URL (with /v1.0) the workers are pointed at.
func (s *Sims) GraphURL() string { return s.graphURL }

// GraphTime returns the summed handler time and the number of requests.
func (s *Sims) GraphTime() (time.Duration, int64) {
	return time.Duration(s.graphNanos.Load()), s.graphCalls.Load()
}

// ResetGraphTime clears GraphTime and the Graph simulator's counters.
func (s *Sims) ResetGraphTime() {
	s.graphNanos.Store(0)
	s.graphCalls.Store(0)
	s.Graph.ResetRequests()
}

// Close stops every simulator.
func (s *Sims) Close() {
	if s.front != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		if err := s.front.Shutdown(ctx); err != nil {
			_ = s.front.Close()
		}
		cancel()
	}
	s.Zeebe.Close()
	s.Graph.Close()
	s.Identity.Close()
}

// OAuthAuth is the authentication variable of the loadtest's app
// registration; the secret comes from {{secrets.O365_CLIENT_SECRET}}.
func (s *Sims) OAuthAuth() map[string]any {
	return auth.Input{
		Type:               auth.TypeClientCredentials,
		OAuthTokenEndpoint: s.Identity.TokenURL(Tenant),
		ClientID:           ClientID,
		ClientSecret:       "{{secrets.O365_CLIENT_SECRET}}",
	}.Variable()
}

// FetchToken gets an access token for the baseline worker, which does not
// implement OAuth itself.
func (s *Sims) FetchToken(ctx context.Context) (string, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {ClientID},
		"client_secret": {ClientSecret},
		"scope":         {"https://graph.microsoft.com/.default"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Identity.TokenURL(Tenant), strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		return "", fmt.Errorf("token endpoint answered %d without a token (%v)", resp.StatusCode, err)
	}
	return body.AccessToken, nil
}
