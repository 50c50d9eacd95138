// Package sandbox runs the real worker end to end on embedded defaults: the
// in-process Zeebe gateway, Graph and identity simulators, a small scenario
// of jobs, and a readable report. It needs no tenant and no cluster.
package sandbox

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/o365-mail-connector/o365-mail-connector/internal/app"
	"github.com/o365-mail-connector/o365-mail-connector/internal/auth"
	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/graphsim"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/identitysim"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

const (
	tenant       = "contoso"
	clientID     = "sandbox-app"
	clientSecret = "sandbox-client-secret-value"
	jobType      = "o365-mail:1"
)

var mailboxes = []string{"alice@contoso.example", "bob@contoso.example", "carol@contoso.example"}

// Env is the running sandbox: simulators and the worker.
type Env struct {
	Zeebe    *zeebesim.Gateway
	Graph    *graphsim.Server
	Identity *identitysim.Server
	Runtime  *app.Runtime
	stop     context.CancelFunc
	done     chan error
}

// Options change the sandbox for tests and benchmarks.
type Options struct {
	Logs      io.Writer            // worker log lines; default io.Discard
	LogLevel  string               // default "error"
	Configure func(*config.Config) // adjusts the configuration before the worker starts
	Secrets   map[string]string    // extra environment for {{secrets.*}}, e.g. "SECRET_X"
	Graph     []graphsim.Option    // extra Graph simulator options
	App       func(*app.Options)   // adjusts the runtime options (operations, client)
}

// Start builds the simulators and starts the real worker against them.
func Start(o Options) (*Env, error) {
	id, err := identitysim.New()
	if err != nil {
		return nil, err
	}
	id.RegisterClient(clientID, clientSecret)
	g, err := graphsim.New(append([]graphsim.Option{graphsim.WithTokenCheck(id.GraphTokenCheck)}, o.Graph...)...)
	if err != nil {
		id.Close()
		return nil, err
	}
	for _, m := range mailboxes {
		g.AddMailbox(m)
	}
	seed(g)
	z, err := zeebesim.Start()
	if err != nil {
		g.Close()
		id.Close()
		return nil, err
	}
	cfg := config.Defaults()
	cfg.ZeebeAddress = z.Addr()
	cfg.ZeebeInsecure = true
	cfg.GraphBaseURL = g.URL()
	cfg.ManagementAddr = "127.0.0.1:0"
	cfg.LogLevel = "error"
	if o.LogLevel != "" {
		cfg.LogLevel = o.LogLevel
	}
	cfg.LogFormat = "console"
	cfg.WorkerName = "sandbox"
	cfg.PollInterval = 20 * time.Millisecond
	cfg.ShutdownGrace = 5 * time.Second
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	if o.Logs == nil {
		o.Logs = io.Discard
	}
	secrets := map[string]string{"SECRET_O365_CLIENT_SECRET": clientSecret}
	for k, v := range o.Secrets {
		secrets[k] = v
	}
	opts := app.Options{
		LogOutput: o.Logs,
		LookupEnv: func(k string) (string, bool) { v, ok := secrets[k]; return v, ok },
	}
	if o.App != nil {
		o.App(&opts)
	}
	rt, err := app.Build(cfg, opts)
	if err != nil {
		z.Close()
		g.Close()
		id.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Env{Zeebe: z, Graph: g, Identity: id, Runtime: rt, stop: cancel, done: make(chan error, 1)}
	go func() { e.done <- rt.Run(ctx) }()
	return e, nil
}

// Close stops the worker gracefully and then the simulators.
func (e *Env) Close() error {
	e.stop()
	err := <-e.done
	e.Zeebe.Close()
	e.Graph.Close()
	e.Identity.Close()
	return err
}

// Auth is the authentication variable of the sandbox's app registration;
// the client secret comes from {{secrets.O365_CLIENT_SECRET}}.
func (e *Env) Auth() map[string]any {
	return auth.Input{
		Type:               auth.TypeClientCredentials,
		OAuthTokenEndpoint: e.Identity.TokenURL(tenant),
		ClientID:           clientID,
		ClientSecret:       "{{secrets.O365_CLIENT_SECRET}}",
	}.Variable()
}

func seed(g *graphsim.Server) {
	now := time.Now().UTC()
	subjects := []string{"Invoice 2026-114", "Lunch on Friday?", "Invoice 2026-115", "Build failed", "Quarterly report"}
	for i, s := range subjects {
		g.AddMessage("alice@contoso.example", "inbox", graphsim.Message{
			Subject: s, BodyContentType: "text", BodyContent: "Hello Alice, " + s,
			From:             graphsim.Recipient{Name: "Dave", Address: "dave@fabrikam.example"},
			To:               []graphsim.Recipient{{Name: "Alice", Address: "alice@contoso.example"}},
			IsRead:           i%2 == 1,
			Importance:       "normal",
			ReceivedDateTime: now.Add(-time.Duration(i) * time.Hour),
		})
	}
}

// Step is one job of the scenario.
type Step struct {
	Name    string
	Spec    zeebesim.JobSpec
	Expect  string // what a reader should see, printed beside the outcome
	key     int64
	Outcome string
	Detail  string
}

// Scenario is the sandbox's jobs, in order.
func (e *Env) Scenario() []*Step {
	auth := e.Auth()
	op := func(m map[string]any) map[string]any { return m }
	job := func(vars map[string]any, headers map[string]string) zeebesim.JobSpec {
		vars["authentication"] = auth
		if headers == nil {
			headers = map[string]string{}
		}
		return zeebesim.JobSpec{Type: jobType, Variables: vars, CustomHeaders: headers, Retries: 3, BpmnProcessID: "sandbox", ElementID: "task"}
	}
	steps := []*Step{
		{Name: "create folder 'Invoices' for alice", Expect: "completed, folderId set",
			Spec: job(map[string]any{"operation": op(map[string]any{"type": "createMailFolder", "userId": "alice@contoso.example"}),
				"folder": map[string]any{"displayName": "Invoices"}},
				map[string]string{"resultExpression": "={folderId: body.id, name: body.displayName}"})},
		{Name: "alice mails bob and carol", Expect: "completed, status 202",
			Spec: job(map[string]any{"operation": op(map[string]any{"type": "sendMail", "userId": "alice@contoso.example"}),
				"message": map[string]any{"subject": "Welcome to the sandbox", "bodyContent": "Hi both!",
					"toRecipients": []any{"bob@contoso.example", map[string]any{"address": "carol@contoso.example", "name": "Carol"}}}},
				map[string]string{"resultExpression": "={sendStatus: status}"})},
		{Name: "list alice's unread inbox", Expect: "completed, 3 unread subjects",
			Spec: job(map[string]any{"operation": op(map[string]any{"type": "listMessages", "userId": "alice@contoso.example", "folderId": "inbox",
				"queryParameters": map[string]any{"$filter": "isRead eq false", "$select": "subject,from,isRead"}})},
				map[string]string{"resultExpression": "={unread: count(body.value), subjects: body.value.subject}"})},
		{Name: "list alice's folders", Expect: "completed, folder names",
			Spec: job(map[string]any{"operation": op(map[string]any{"type": "listMailFolders", "userId": "alice@contoso.example"})},
				map[string]string{"resultExpression": "={folders: body.value.displayName}"})},
		{Name: "unknown mailbox → BPMN error via errorExpression", Expect: "BPMN error MAILBOX_NOT_FOUND",
			Spec: job(map[string]any{"operation": op(map[string]any{"type": "listMessages", "userId": "nobody@contoso.example"})},
				map[string]string{"errorExpression": `=if error.code = "404" then bpmnError("MAILBOX_NOT_FOUND", error.message) else null`})},
		{Name: "bad recipient address", Expect: "incident INVALID_INPUT naming message.toRecipients",
			Spec: job(map[string]any{"operation": op(map[string]any{"type": "sendMail", "userId": "alice@contoso.example"}),
				"message": map[string]any{"subject": "x", "bodyContent": "x", "toRecipients": []any{"not an address"}}}, nil)},
		{Name: "unknown secret", Expect: "incident SECRET_NOT_FOUND",
			Spec: job(map[string]any{"operation": op(map[string]any{"type": "listMailFolders", "userId": "{{secrets.MAILBOX}}"})}, nil)},
	}
	// A burst of 12 reads of bob's inbox: the worker's per-mailbox limit
	// keeps Graph's MailboxConcurrency 429s away, and an injected 429 with
	// Retry-After is waited out inside the jobs.
	for i := 0; i < 12; i++ {
		steps = append(steps, &Step{Name: fmt.Sprintf("burst: read bob's inbox #%02d", i+1), Expect: "completed",
			Spec: job(map[string]any{"operation": op(map[string]any{"type": "listMessages", "userId": "bob@contoso.example", "folderId": "inbox"})},
				map[string]string{"resultExpression": "={n: count(body.value)}"})})
	}
	return steps
}

// Play submits the steps, waits for every job to end, and fills in outcomes.
func (e *Env) Play(ctx context.Context, steps []*Step) error {
	e.Graph.InjectFault(graphsim.Fault{Method: "GET", Path: `^/users/bob@contoso\.example/mailFolders/inbox/messages$`, Status: 429,
		Code: "ApplicationThrottled", Message: "Application is over its MailboxConcurrency limit.", RetryAfter: "1", Times: 2})
	for _, s := range steps {
		s.key = e.Zeebe.CreateJob(s.Spec)
		// The first steps depend on each other (the mail must arrive before
		// the burst reads it); the burst goes at once.
		if !strings.HasPrefix(s.Name, "burst") {
			if err := e.Zeebe.AwaitJobs(ctx, []int64{s.key}, zeebesim.Job.Ended); err != nil {
				return err
			}
		}
	}
	keys := make([]int64, len(steps))
	for i, s := range steps {
		keys[i] = s.key
	}
	if err := e.Zeebe.AwaitJobs(ctx, keys, zeebesim.Job.Ended); err != nil {
		return err
	}
	for _, s := range steps {
		j, _ := e.Zeebe.Job(s.key)
		s.Outcome, s.Detail = describe(j)
	}
	return nil
}

func describe(j zeebesim.Job) (string, string) {
	switch j.State {
	case zeebesim.StateCompleted:
		keys := make([]string, 0, len(j.Variables))
		for k := range j.Variables {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%v", k, j.Variables[k]))
		}
		return "completed", strings.Join(parts, " ")
	case zeebesim.StateErrorThrown:
		return "BPMN error " + j.ErrorCode, j.ErrorMessage
	case zeebesim.StateIncident:
		return "incident", j.ErrorMessage
	}
	return string(j.State), j.ErrorMessage
}

// Report writes the scenario's outcomes as a table.
func Report(w io.Writer, steps []*Step, e *Env) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tEXPECTED\tOUTCOME\tDETAIL")
	for _, s := range steps {
		detail := s.Detail
		if len(detail) > 110 {
			detail = detail[:110] + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Expect, s.Outcome, detail)
	}
	_ = tw.Flush()
	st := e.Graph.Stats()
	fmt.Fprintf(w, "\nGraph simulator: %d requests; %d injected faults (429 with Retry-After: 1) waited out inside the jobs; "+
		"%d MailboxConcurrency 429s; at most %d requests in flight per mailbox; %d token request(s) for %d jobs\n",
		st.Requests, st.Faults, st.Throttled429, st.MaxConcurrentPerMailbox, e.Identity.TokenRequests(), len(steps))
	for _, m := range mailboxes[1:] {
		fmt.Fprintf(w, "%s inbox: %d messages\n", m, len(e.Graph.Messages(m, "inbox")))
	}
}

// Run is `o365-mail-connector sandbox`.
func Run(ctx context.Context, out io.Writer, _ func(string) (string, bool)) error {
	fmt.Fprintln(out, "Starting the in-process Zeebe gateway, Graph and identity simulators, and the worker…")
	e, err := Start(Options{Logs: out})
	if err != nil {
		return err
	}
	steps := e.Scenario()
	playCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	playErr := e.Play(playCtx, steps)
	if playErr == nil {
		fmt.Fprintf(out, "\nScenario finished in %s:\n\n", time.Since(start).Round(time.Millisecond))
		Report(out, steps, e)
	}
	if err := e.Close(); err != nil && playErr == nil {
		playErr = err
	}
	return playErr
}
