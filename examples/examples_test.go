package examples

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
	"github.com/o365-mail-connector/o365-mail-connector/internal/feel"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sandbox"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/graphsim"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

// ---- the models

// The struct tags spell the namespaces out because encoding/xml matches
// elements by namespace URI, not by the prefixes the files happen to use.

type definitions struct {
	Processes []process `xml:"http://www.omg.org/spec/BPMN/20100524/MODEL process"`
}

type element struct {
	XMLName xml.Name
	ID      string `xml:"id,attr"`
}

type process struct {
	ID        string    `xml:"id,attr"`
	Starts    []element `xml:"http://www.omg.org/spec/BPMN/20100524/MODEL startEvent"`
	Ends      []element `xml:"http://www.omg.org/spec/BPMN/20100524/MODEL endEvent"`
	Services  []task    `xml:"http://www.omg.org/spec/BPMN/20100524/MODEL serviceTask"`
	Sends     []task    `xml:"http://www.omg.org/spec/BPMN/20100524/MODEL sendTask"`
	Gateways  []gateway `xml:"http://www.omg.org/spec/BPMN/20100524/MODEL exclusiveGateway"`
	Flows     []flow    `xml:"http://www.omg.org/spec/BPMN/20100524/MODEL sequenceFlow"`
	Unhandled []element `xml:",any"` // anything the runner below cannot execute
}

type task struct {
	ID              string     `xml:"id,attr"`
	Name            string     `xml:"name,attr"`
	Template        string     `xml:"http://camunda.org/schema/zeebe/1.0 modelerTemplate,attr"`
	TemplateVersion string     `xml:"http://camunda.org/schema/zeebe/1.0 modelerTemplateVersion,attr"`
	Ext             taskExt    `xml:"http://www.omg.org/spec/BPMN/20100524/MODEL extensionElements"`
	Loop            *multiInst `xml:"http://www.omg.org/spec/BPMN/20100524/MODEL multiInstanceLoopCharacteristics"`
}

type taskExt struct {
	Definition *struct {
		Type    string `xml:"type,attr"`
		Retries string `xml:"retries,attr"`
	} `xml:"http://camunda.org/schema/zeebe/1.0 taskDefinition"`
	IO *struct {
		Inputs  []mapping `xml:"http://camunda.org/schema/zeebe/1.0 input"`
		Outputs []mapping `xml:"http://camunda.org/schema/zeebe/1.0 output"`
	} `xml:"http://camunda.org/schema/zeebe/1.0 ioMapping"`
	Headers *struct {
		Headers []struct {
			Key   string `xml:"key,attr"`
			Value string `xml:"value,attr"`
		} `xml:"http://camunda.org/schema/zeebe/1.0 header"`
	} `xml:"http://camunda.org/schema/zeebe/1.0 taskHeaders"`
}

type mapping struct {
	Source string `xml:"source,attr"`
	Target string `xml:"target,attr"`
}

type multiInst struct {
	Sequential bool `xml:"isSequential,attr"`
	Ext        struct {
		Zeebe *struct {
			InputCollection  string `xml:"inputCollection,attr"`
			InputElement     string `xml:"inputElement,attr"`
			OutputCollection string `xml:"outputCollection,attr"`
			OutputElement    string `xml:"outputElement,attr"`
		} `xml:"http://camunda.org/schema/zeebe/1.0 loopCharacteristics"`
	} `xml:"http://www.omg.org/spec/BPMN/20100524/MODEL extensionElements"`
}

type gateway struct {
	ID      string `xml:"id,attr"`
	Default string `xml:"default,attr"`
}

type flow struct {
	ID        string `xml:"id,attr"`
	Source    string `xml:"sourceRef,attr"`
	Target    string `xml:"targetRef,attr"`
	Condition string `xml:"http://www.omg.org/spec/BPMN/20100524/MODEL conditionExpression"`
}

func (tk *task) inputs() []mapping {
	if tk.Ext.IO == nil {
		return nil
	}
	return tk.Ext.IO.Inputs
}

func (tk *task) headers() map[string]string {
	h := map[string]string{}
	if tk.Ext.Headers != nil {
		for _, e := range tk.Ext.Headers.Headers {
			h[e.Key] = e.Value
		}
	}
	return h
}

func (tk *task) jobType() string {
	if tk.Ext.Definition == nil {
		return ""
	}
	return tk.Ext.Definition.Type
}

// tasks are the process's service and send tasks in document order.
func (p *process) tasks() []*task {
	var out []*task
	for i := range p.Services {
		out = append(out, &p.Services[i])
	}
	for i := range p.Sends {
		out = append(out, &p.Sends[i])
	}
	return out
}

func (p *process) task(id string) *task {
	for _, tk := range p.tasks() {
		if tk.ID == id {
			return tk
		}
	}
	return nil
}

type model struct {
	file string
	proc *process
}

func loadModel(t *testing.T, file string) model {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var d definitions
	require.NoError(t, xml.Unmarshal(data, &d), file)
	require.Len(t, d.Processes, 1, "%s: one process per file", file)
	return model{file: file, proc: &d.Processes[0]}
}

func loadModels(t *testing.T) []model {
	t.Helper()
	files, err := filepath.Glob("*.bpmn")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	sort.Strings(files)
	var out []model
	for _, f := range files {
		out = append(out, loadModel(t, f))
	}
	return out
}

// ---- Zeebe's side: FEEL, input mappings, variable scopes

const jobType = "o365-mail:1"

func evalFEEL(src string, vars map[string]any) (any, error) {
	expr, err := feel.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("FEEL %q: %w", src, err)
	}
	v, err := expr.Eval(vars)
	if err != nil {
		return nil, fmt.Errorf("FEEL %q: %w", src, err)
	}
	return feel.ToJSON(v)
}

func overlay(layers ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, l := range layers {
		maps.Copy(out, l)
	}
	return out
}

// setPath writes v at a dotted target the way Zeebe does: "a.b" creates (or
// extends) the context variable a with the entry b.
func setPath(vars map[string]any, target string, v any) error {
	parts := strings.Split(target, ".")
	m := vars
	for i, p := range parts[:len(parts)-1] {
		next, ok := m[p]
		if !ok || next == nil {
			nm := map[string]any{}
			m[p] = nm
			m = nm
			continue
		}
		nm, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("target %q: %q is not a context", target, strings.Join(parts[:i+1], "."))
		}
		m = nm
	}
	m[parts[len(parts)-1]] = v
	return nil
}

// applyInputs evaluates a task's input mappings over scope and returns the
// local variables they create. A source with a leading "=" is FEEL, any
// other is a static string (so {{secrets.X}} stays text for the worker).
// Each mapping sees the ones before it, as in Zeebe.
func applyInputs(tk *task, scope map[string]any) (map[string]any, error) {
	local := map[string]any{}
	for _, in := range tk.inputs() {
		var v any = in.Source
		if src, ok := strings.CutPrefix(in.Source, "="); ok {
			var err error
			if v, err = evalFEEL(src, overlay(scope, local)); err != nil {
				return nil, fmt.Errorf("input %q: %w", in.Target, err)
			}
		}
		if err := setPath(local, in.Target, v); err != nil {
			return nil, err
		}
	}
	return local, nil
}

// ---- the harness: sandbox plus a token walker over the process graph

const (
	tenant             = "contoso"
	confidentialClient = "examples-app"
	confidentialSecret = "examples-client-secret-value"
	// The refresh-token example sends no client secret, so its app must be
	// a public client (see README).
	publicClient = "examples-public-app"

	alice = "alice@contoso.example"
	bob   = "bob@contoso.example"
	carol = "carol@contoso.example"
)

type harness struct {
	t          *testing.T
	env        *sandbox.Env
	secretsDir string
	logs       *sandbox.LogBuffer
}

// start runs the sandbox with the secrets the README lists: the client
// secret as SECRET_ environment variable, the others as files in
// SECRETS_DIR, because their values (URLs, tokens) exist only once the
// simulators run.
func start(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, secretsDir: t.TempDir(), logs: &sandbox.LogBuffer{}}
	env, err := sandbox.Start(sandbox.Options{
		Logs:      h.logs,
		LogLevel:  "debug",
		Secrets:   map[string]string{"SECRET_O365_CLIENT_SECRET": confidentialSecret},
		Configure: func(c *config.Config) { c.SecretsDir = h.secretsDir },
	})
	require.NoError(t, err)
	h.env = env
	t.Cleanup(func() {
		require.NoError(t, env.Close())
		if t.Failed() {
			t.Logf("worker log:\n%s", h.logs)
		}
	})
	env.Identity.RegisterClient(confidentialClient, confidentialSecret)
	env.Identity.RegisterClient(publicClient, "")
	h.secret("O365_TOKEN_ENDPOINT", env.Identity.TokenURL(tenant))
	h.secret("O365_CLIENT_ID", confidentialClient)
	return h
}

func (h *harness) secret(name, value string) {
	h.t.Helper()
	require.NoError(h.t, os.WriteFile(filepath.Join(h.secretsDir, name), []byte(value+"\n"), 0o600))
}

// accessToken fetches a Graph token as an operator would for the bearer
// example.
func (h *harness) accessToken() string {
	h.t.Helper()
	resp, err := http.PostForm(h.env.Identity.TokenURL(tenant), url.Values{
		"grant_type": {"client_credentials"}, "client_id": {confidentialClient},
		"client_secret": {confidentialSecret}, "scope": {"https://graph.microsoft.com/.default"},
	})
	require.NoError(h.t, err)
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(h.t, json.NewDecoder(resp.Body).Decode(&tok))
	require.Equal(h.t, http.StatusOK, resp.StatusCode)
	require.NotEmpty(h.t, tok.AccessToken)
	return tok.AccessToken
}

// instance is one process instance as the walker ran it.
type instance struct {
	vars   map[string]any            // the process scope
	path   []string                  // element ids the token passed, in order
	jobs   map[string][]zeebesim.Job // ended jobs by task id
	failed *zeebesim.Job             // the job that stopped the instance
}

func (in *instance) requireCompleted(t *testing.T) {
	t.Helper()
	if in.failed != nil {
		j := in.failed
		t.Fatalf("task %s: job ended %s: %s %s (path %v)", j.Spec.ElementID, j.State, j.ErrorCode, j.ErrorMessage, in.path)
	}
}

func ended(j zeebesim.Job) bool {
	switch j.State {
	case zeebesim.StateCompleted, zeebesim.StateErrorThrown, zeebesim.StateIncident:
		return true
	case zeebesim.StateFailed, zeebesim.StateActivatable:
		// A failure with retries left waits out retryBackoff (PT30S here);
		// for these tests it is as final as an incident.
		return j.Activations > 0 && j.ErrorMessage != ""
	}
	return false
}

// run walks the process from its start event: start and end events pass,
// exclusive gateways take the first flow whose condition is true (else the
// default flow), and every task becomes one job per instance (one per
// element for multi-instance) that the real worker handles. The instance
// stops at the first job that does not complete, as a Zeebe incident would.
func (h *harness) run(p *process, vars map[string]any) *instance {
	t := h.t
	t.Helper()
	require.Empty(t, p.Unhandled, "%s: elements the walker does not know", p.ID)
	require.Len(t, p.Starts, 1)
	kinds := map[string]string{}
	for _, e := range p.Starts {
		kinds[e.ID] = "start"
	}
	for _, e := range p.Ends {
		kinds[e.ID] = "end"
	}
	for _, tk := range p.tasks() {
		kinds[tk.ID] = "task"
	}
	gateways := map[string]gateway{}
	for _, g := range p.Gateways {
		kinds[g.ID] = "gateway"
		gateways[g.ID] = g
	}
	outgoing := func(id string) []flow {
		var out []flow
		for _, f := range p.Flows {
			if f.Source == id {
				out = append(out, f)
			}
		}
		return out
	}

	in := &instance{vars: maps.Clone(vars), jobs: map[string][]zeebesim.Job{}}
	node := p.Starts[0].ID
	for steps := 0; ; steps++ {
		require.Less(t, steps, 100, "%s: the walk does not end", p.ID)
		in.path = append(in.path, node)
		switch kinds[node] {
		case "end":
			return in
		case "task":
			if !h.execTask(p, p.task(node), in) {
				return in
			}
		case "gateway":
			node = h.choose(gateways[node], outgoing(node), in.vars)
			continue
		case "start":
		default:
			t.Fatalf("%s: unknown element %q", p.ID, node)
		}
		out := outgoing(node)
		require.Len(t, out, 1, "%s: %s needs exactly one outgoing flow here", p.ID, node)
		require.Empty(t, out[0].Condition, "%s: conditional flow %s after a non-gateway", p.ID, out[0].ID)
		node = out[0].Target
	}
}

func (h *harness) choose(g gateway, out []flow, vars map[string]any) string {
	t := h.t
	t.Helper()
	for _, f := range out {
		if f.ID == g.Default {
			continue
		}
		src, ok := strings.CutPrefix(strings.TrimSpace(f.Condition), "=")
		require.True(t, ok, "flow %s: condition %q is not a FEEL expression", f.ID, f.Condition)
		v, err := evalFEEL(src, vars)
		require.NoError(t, err, "flow %s", f.ID)
		if v == true {
			return f.Target
		}
	}
	for _, f := range out {
		if f.ID == g.Default {
			return f.Target
		}
	}
	t.Fatalf("gateway %s: no condition holds and there is no default flow", g.ID)
	return ""
}

// execTask runs a task's jobs and propagates their results to the process
// scope; false when a job did not complete.
func (h *harness) execTask(p *process, tk *task, in *instance) bool {
	t := h.t
	t.Helper()
	require.Equal(t, jobType, tk.jobType(), "task %s", tk.ID)
	require.True(t, tk.Ext.IO == nil || len(tk.Ext.IO.Outputs) == 0, "task %s: the walker does not model output mappings", tk.ID)

	// Each inner instance of a multi-instance task has the element variable
	// as a local variable.
	elementLocals := []map[string]any{{}}
	sequential := false
	if tk.Loop != nil {
		lc := tk.Loop.Ext.Zeebe
		require.NotNil(t, lc, "task %s: multi-instance without zeebe:loopCharacteristics", tk.ID)
		require.Empty(t, lc.OutputCollection, "task %s: the walker does not model output collections", tk.ID)
		src, ok := strings.CutPrefix(lc.InputCollection, "=")
		require.True(t, ok, "task %s: inputCollection must be FEEL", tk.ID)
		coll, err := evalFEEL(src, in.vars)
		require.NoError(t, err, "task %s: inputCollection", tk.ID)
		items, ok := coll.([]any)
		require.True(t, ok, "task %s: inputCollection gave %T, not a list (Zeebe raises an incident)", tk.ID, coll)
		elementLocals = nil
		for _, it := range items {
			elementLocals = append(elementLocals, map[string]any{lc.InputElement: it})
		}
		sequential = tk.Loop.Sequential
	}
	retries := int32(3)
	if r := tk.Ext.Definition.Retries; r != "" {
		n, err := strconv.Atoi(r)
		require.NoError(t, err, "task %s: retries", tk.ID)
		retries = int32(n)
	}

	type pending struct {
		key    int64
		locals map[string]any // names that stay in the task's own scope
	}
	submit := func(el map[string]any) pending {
		mapped, err := applyInputs(tk, overlay(in.vars, el))
		require.NoError(t, err, "task %s", tk.ID)
		key := h.env.Zeebe.CreateJob(zeebesim.JobSpec{
			Type: tk.jobType(), Variables: overlay(in.vars, el, mapped), CustomHeaders: tk.headers(),
			Retries: retries, BpmnProcessID: p.ID, ElementID: tk.ID,
		})
		return pending{key: key, locals: overlay(el, mapped)}
	}
	finish := func(ps []pending) bool {
		keys := make([]int64, len(ps))
		for i, pj := range ps {
			keys[i] = pj.key
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		require.NoError(t, h.env.Zeebe.AwaitJobs(ctx, keys, ended), "task %s", tk.ID)
		ok := true
		for _, pj := range ps {
			j, _ := h.env.Zeebe.Job(pj.key)
			in.jobs[tk.ID] = append(in.jobs[tk.ID], j)
			if j.State != zeebesim.StateCompleted {
				if in.failed == nil {
					in.failed = &j
				}
				ok = false
				continue
			}
			// Without output mappings Zeebe sets a completion variable where
			// it is visible: in the task's scope for its locals, otherwise
			// in the process scope.
			for k, v := range j.Variables {
				if _, local := pj.locals[k]; !local {
					in.vars[k] = v
				}
			}
		}
		return ok
	}

	if sequential {
		for _, el := range elementLocals {
			if !finish([]pending{submit(el)}) {
				return false
			}
		}
		return true
	}
	var ps []pending
	for _, el := range elementLocals {
		ps = append(ps, submit(el))
	}
	return finish(ps)
}

// ---- the tests

// scenarios run each example against the sandbox and check what it did in
// the simulated mailboxes. Every example file must have one.
var scenarios = map[string]func(t *testing.T, h *harness, p *process){
	"list-mail-folders.bpmn": func(t *testing.T, h *harness, p *process) {
		h.secret("O365_BEARER_TOKEN", h.accessToken())
		in := h.run(p, map[string]any{"mailbox": alice})
		in.requireCompleted(t)
		require.Equal(t, []string{"StartEvent", "ListMailFolders", "EndEvent"}, in.path)

		all := h.env.Graph.Folders(alice)
		var want []string
		for _, f := range all {
			if f.ParentFolderID == all[0].ID {
				want = append(want, f.DisplayName)
			}
		}
		folders, ok := in.vars["folders"].([]any)
		require.True(t, ok, "folders = %#v", in.vars["folders"])
		var got []string
		for _, f := range folders {
			m := f.(map[string]any)
			got = append(got, m["displayName"].(string))
			if m["displayName"] == "Inbox" {
				require.EqualValues(t, 3, m["unreadItemCount"], "the sandbox seeds 3 unread messages")
			}
		}
		require.ElementsMatch(t, want, got)

		var listed bool
		for _, r := range h.env.Graph.Requests() {
			if r.Method == "GET" && r.Mailbox == alice && strings.HasSuffix(r.Path, "/mailFolders") {
				listed = true
				q, err := url.ParseQuery(r.RawQuery)
				require.NoError(t, err)
				require.Equal(t, "id,displayName,unreadItemCount,totalItemCount", q.Get("$select"))
				require.Equal(t, "50", q.Get("$top"))
			}
		}
		require.True(t, listed, "no folder listing reached Graph")
	},

	"create-mail-folder.bpmn": func(t *testing.T, h *harness, p *process) {
		rt := h.env.Identity.IssueRefreshToken(publicClient)
		h.secret("O365_CLIENT_ID", publicClient)
		h.secret("O365_REFRESH_TOKEN", rt)
		in := h.run(p, map[string]any{"mailbox": alice})
		in.requireCompleted(t)

		id, ok := in.vars["createdFolderId"].(string)
		require.True(t, ok, "createdFolderId = %#v", in.vars["createdFolderId"])
		inbox, ok := h.env.Graph.Mailbox(alice).FolderID("inbox")
		require.True(t, ok)
		var found bool
		for _, f := range h.env.Graph.Folders(alice) {
			if f.ID == id {
				found = true
				require.Equal(t, "Processed by Camunda", f.DisplayName)
				require.Equal(t, inbox, f.ParentFolderID)
				require.False(t, f.IsHidden)
			}
		}
		require.True(t, found, "folder %s not in alice's mailbox", id)

		reqs := h.env.Identity.Requests()
		require.NotEmpty(t, reqs)
		last := reqs[len(reqs)-1]
		require.Equal(t, "refresh_token", last.GrantType)
		require.Equal(t, publicClient, last.ClientID)
		require.Equal(t, rt, last.RefreshToken)
	},

	"list-messages.bpmn": func(t *testing.T, h *harness, p *process) {
		// 30 messages, $top 10 and maxResults 25: three pages, cut at 25.
		now := time.Now().UTC()
		var want []any
		for i := 0; i < 30; i++ {
			s := fmt.Sprintf("Report %02d", i)
			h.env.Graph.AddMessage(carol, "inbox", graphsim.Message{Subject: s, BodyContent: s,
				From: graphsim.Recipient{Name: "Dave", Address: "dave@fabrikam.example"}, ReceivedDateTime: now.Add(-time.Duration(i) * time.Minute)})
			if i < 25 {
				want = append(want, s)
			}
		}
		in := h.run(p, map[string]any{"mailbox": carol})
		in.requireCompleted(t)

		msgs, ok := in.vars["messages"].([]any)
		require.True(t, ok, "messages = %#v", in.vars["messages"])
		var got []any
		for _, m := range msgs {
			got = append(got, m.(map[string]any)["subject"])
		}
		require.Equal(t, want, got, "newest first, 25 of 30")

		resp, ok := in.vars["listMessagesResponse"].(map[string]any)
		require.True(t, ok, "listMessagesResponse = %#v", in.vars["listMessagesResponse"])
		require.EqualValues(t, 200, resp["status"])
		require.Len(t, resp["body"].(map[string]any)["value"], 25)

		var pages int
		for _, r := range h.env.Graph.Requests() {
			if r.Method == "GET" && r.Mailbox == carol && strings.HasSuffix(r.Path, "/messages") {
				pages++
			}
		}
		require.GreaterOrEqual(t, pages, 3)
	},

	"send-mail.bpmn": func(t *testing.T, h *harness, p *process) {
		in := h.run(p, map[string]any{"mailbox": alice, "recipient": bob})
		in.requireCompleted(t)

		resp, ok := in.vars["sendMailResponse"].(map[string]any)
		require.True(t, ok, "sendMailResponse = %#v", in.vars["sendMailResponse"])
		require.EqualValues(t, 202, resp["status"])
		require.Nil(t, resp["body"])

		inbox := h.env.Graph.Messages(bob, "inbox")
		require.Len(t, inbox, 1)
		m := inbox[0]
		require.Equal(t, "Hello from Camunda", m.Subject)
		require.Equal(t, "html", m.BodyContentType)
		require.Contains(t, m.BodyContent, "<b>o365-mail-connector</b>")
		require.Equal(t, "high", m.Importance)
		require.Equal(t, alice, m.From.Address)
		require.Equal(t, []graphsim.Recipient{{Name: "Mailbox owner", Address: alice}}, m.ReplyTo)
		require.Len(t, h.env.Graph.Messages(alice, "sentitems"), 1)
	},

	"triage-inbox.bpmn": func(t *testing.T, h *harness, p *process) {
		const dave, erin = "dave@fabrikam.example", "erin@fabrikam.example"
		// The sandbox seeds alice's inbox with 5 mails from dave, 3 unread.
		// Two more unread ones: without subject, and from alice herself,
		// which the input collection leaves out.
		h.env.Graph.AddMailbox(dave)
		h.env.Graph.AddMailbox(erin)
		h.env.Graph.AddMessage(alice, "inbox", graphsim.Message{BodyContent: "?",
			From: graphsim.Recipient{Name: "Erin", Address: erin}})
		h.env.Graph.AddMessage(alice, "inbox", graphsim.Message{Subject: "Note to self", BodyContent: "!",
			From: graphsim.Recipient{Name: "Alice", Address: alice}})
		aliceInbox := len(h.env.Graph.Messages(alice, "inbox"))

		in := h.run(p, map[string]any{"mailbox": alice})
		in.requireCompleted(t)
		require.Equal(t, []string{"StartEvent", "ListUnread", "AnyUnread", "CreateTriageFolder", "ReplyToSenders", "EndTriaged"}, in.path)
		require.Equal(t, 5, len(in.vars["unread"].([]any)))
		require.Equal(t, 4, len(in.jobs["ReplyToSenders"]), "one reply per unread message not from alice")

		inbox, _ := h.env.Graph.Mailbox(alice).FolderID("inbox")
		var triage []graphsim.Folder
		for _, f := range h.env.Graph.Folders(alice) {
			if f.DisplayName == "Triage" {
				triage = append(triage, f)
			}
		}
		require.Len(t, triage, 1)
		require.Equal(t, inbox, triage[0].ParentFolderID)
		require.Equal(t, triage[0].ID, in.vars["triageFolderId"])

		subjects := func(upn string) []string {
			var s []string
			for _, m := range h.env.Graph.Messages(upn, "inbox") {
				require.Equal(t, alice, m.From.Address)
				require.Equal(t, "text", m.BodyContentType)
				require.Contains(t, m.BodyContent, "filed for triage")
				s = append(s, m.Subject)
			}
			return s
		}
		require.ElementsMatch(t, []string{"Re: Invoice 2026-114", "Re: Invoice 2026-115", "Re: Quarterly report"}, subjects(dave))
		require.Equal(t, []string{"Re: "}, subjects(erin))
		require.Len(t, h.env.Graph.Messages(alice, "inbox"), aliceInbox, "no reply to the mailbox itself")
		require.Len(t, h.env.Graph.Messages(alice, "sentitems"), 4)

		// Again: the folder exists, Graph answers 409 and the error
		// expression lets the flow go on.
		in = h.run(p, map[string]any{"mailbox": alice})
		in.requireCompleted(t)
		require.Equal(t, true, in.vars["triageFolderExisted"])
		require.Len(t, h.env.Graph.Messages(dave, "inbox"), 6)

		// Nothing unread: the gateway ends the instance after one job.
		in = h.run(p, map[string]any{"mailbox": bob})
		in.requireCompleted(t)
		require.Equal(t, []string{"StartEvent", "ListUnread", "AnyUnread", "EndNothing"}, in.path)
	},
}

func TestExamplesRunThroughTheWorker(t *testing.T) {
	for _, m := range loadModels(t) {
		t.Run(m.file, func(t *testing.T) {
			sc, ok := scenarios[m.file]
			require.True(t, ok, "%s has no scenario in examples_test.go", m.file)
			sc(t, start(t), m.proc)
		})
	}
}

// A model whose mapping no longer matches the connector must fail: the
// worker raises an INVALID_INPUT incident naming the variable.
func TestBrokenMappingStopsTheInstance(t *testing.T) {
	for _, c := range []struct{ from, to, want string }{
		{"operation.userId", "operation.user", "operation.userId"},
		{"message.toRecipients", "message.to", "message.toRecipients"},
	} {
		t.Run(c.to, func(t *testing.T) {
			m := loadModel(t, "send-mail.bpmn")
			tk := m.proc.task("SendMail")
			var renamed bool
			for i := range tk.Ext.IO.Inputs {
				if tk.Ext.IO.Inputs[i].Target == c.from {
					tk.Ext.IO.Inputs[i].Target, renamed = c.to, true
				}
			}
			require.True(t, renamed)
			require.NotEmpty(t, templateProblems(tk, loadTemplate(t)), "the template check misses it")

			h := start(t)
			in := h.run(m.proc, map[string]any{"mailbox": alice, "recipient": bob})
			require.NotNil(t, in.failed, "the job completed")
			require.Equal(t, zeebesim.StateIncident, in.failed.State)
			require.Contains(t, in.failed.ErrorMessage, "INVALID_INPUT")
			require.Contains(t, in.failed.ErrorMessage, c.want)
			require.Empty(t, h.env.Graph.Messages(bob, "inbox"))
		})
	}
}

// ---- the element template

type templateProp struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Value    any    `json:"value"`
	Optional bool   `json:"optional"`
	FEEL     string `json:"feel"`
	Choices  []struct {
		Value string `json:"value"`
	} `json:"choices"`
	Binding struct {
		Type     string `json:"type"`
		Name     string `json:"name"`
		Key      string `json:"key"`
		Property string `json:"property"`
	} `json:"binding"`
	Condition *struct {
		Property string   `json:"property"`
		Equals   *string  `json:"equals"`
		OneOf    []string `json:"oneOf"`
	} `json:"condition"`
}

type elementTemplate struct {
	ID         string         `json:"id"`
	Version    int            `json:"version"`
	Properties []templateProp `json:"properties"`
}

func loadTemplate(t *testing.T) *elementTemplate {
	t.Helper()
	data, err := os.ReadFile("../element-templates/o365-mail-connector.json")
	require.NoError(t, err)
	var tmpl elementTemplate
	require.NoError(t, json.Unmarshal(data, &tmpl))
	return &tmpl
}

// templateProblems lists where a task differs from what the element
// template writes: inputs and headers that are no active field of the
// template, dropdown values it does not offer, FEEL where the field is
// FEEL-only, and missing mandatory fields.
func templateProblems(tk *task, tmpl *elementTemplate) []string {
	var p []string
	if tk.Template != tmpl.ID || tk.TemplateVersion != strconv.Itoa(tmpl.Version) {
		p = append(p, fmt.Sprintf("template %s v%s, want %s v%d", tk.Template, tk.TemplateVersion, tmpl.ID, tmpl.Version))
	}
	sources := map[string]string{}
	for _, in := range tk.inputs() {
		sources[in.Target] = in.Source
	}
	byID := map[string]templateProp{}
	for _, pr := range tmpl.Properties {
		byID[pr.ID] = pr
	}
	active := func(pr templateProp) bool {
		c := pr.Condition
		if c == nil {
			return true
		}
		v := sources[byID[c.Property].Binding.Name]
		if c.Equals != nil {
			return v == *c.Equals
		}
		for _, o := range c.OneOf {
			if v == o {
				return true
			}
		}
		return false
	}
	fields := map[string]templateProp{}
	headerKeys := map[string]bool{}
	for _, pr := range tmpl.Properties {
		if !active(pr) {
			continue
		}
		switch pr.Binding.Type {
		case "zeebe:input":
			fields[pr.Binding.Name] = pr
			if _, ok := sources[pr.Binding.Name]; !ok && !pr.Optional {
				p = append(p, fmt.Sprintf("mandatory input %s missing", pr.Binding.Name))
			}
		case "zeebe:taskHeader":
			headerKeys[pr.Binding.Key] = true
		case "zeebe:taskDefinition":
			var have string
			if d := tk.Ext.Definition; d != nil && pr.Binding.Property == "type" {
				have = d.Type
			} else if d != nil && pr.Binding.Property == "retries" {
				have = d.Retries
			}
			if want, _ := pr.Value.(string); have != want {
				p = append(p, fmt.Sprintf("taskDefinition %s = %q, template writes %q", pr.Binding.Property, have, want))
			}
		}
	}
	for _, in := range tk.inputs() {
		pr, ok := fields[in.Target]
		if !ok {
			p = append(p, fmt.Sprintf("input target %s is no field of the template for this authentication/operation", in.Target))
			continue
		}
		if pr.FEEL == "required" && !strings.HasPrefix(in.Source, "=") {
			p = append(p, fmt.Sprintf("input %s must be a FEEL expression", in.Target))
		}
		if len(pr.Choices) > 0 {
			var ok bool
			for _, c := range pr.Choices {
				ok = ok || c.Value == in.Source
			}
			if !ok {
				p = append(p, fmt.Sprintf("input %s = %q is not one of the template's choices", in.Target, in.Source))
			}
		}
	}
	for k := range tk.headers() {
		if !headerKeys[k] {
			p = append(p, fmt.Sprintf("header %s is no field of the template", k))
		}
	}
	return p
}

func TestModelsMatchTheTemplate(t *testing.T) {
	tmpl := loadTemplate(t)
	for _, m := range loadModels(t) {
		tasks := m.proc.tasks()
		require.NotEmpty(t, tasks, m.file)
		for _, tk := range tasks {
			require.Empty(t, templateProblems(tk, tmpl), "%s task %s", m.file, tk.ID)
		}
	}
}

// ---- the README

var (
	jsonBlock = regexp.MustCompile("(?s)```json\n(.*?)```")
	headerDoc = regexp.MustCompile("`(resultVariable|resultExpression|errorExpression|retryBackoff)` = `([^`]*)`")
)

// readmeDocs maps each task id to the README's job-variables block and the
// headers it lists.
func readmeDocs(t *testing.T, readme string, ids []string) (map[string]any, map[string]map[string]string) {
	t.Helper()
	cc := strings.Index(readme, "written `<cc-auth>` below")
	require.GreaterOrEqual(t, cc, 0, "README: the <cc-auth> block")
	ccBlock := jsonBlock.FindStringSubmatch(readme[cc:])
	require.NotNil(t, ccBlock)
	var ccAuth any
	require.NoError(t, json.Unmarshal([]byte(ccBlock[1]), &ccAuth), "README <cc-auth>")

	type mark struct {
		id  string
		pos int
	}
	var marks []mark
	for _, id := range ids {
		pos := -1
		for _, form := range []string{"task `" + id + "`", "**`" + id + "`**"} {
			if i := strings.Index(readme, form); i >= 0 {
				pos = i
			}
		}
		require.GreaterOrEqual(t, pos, 0, "README documents no task %s", id)
		marks = append(marks, mark{id, pos})
	}
	sort.Slice(marks, func(i, k int) bool { return marks[i].pos < marks[k].pos })
	end := len(readme)
	if i := strings.Index(readme[marks[len(marks)-1].pos:], "\n## "); i >= 0 {
		end = marks[len(marks)-1].pos + i
	}

	vars := map[string]any{}
	headers := map[string]map[string]string{}
	for i, mk := range marks {
		stop := end
		if i+1 < len(marks) {
			stop = marks[i+1].pos
		}
		seg := readme[mk.pos:stop]
		b := jsonBlock.FindStringSubmatch(seg)
		require.NotNil(t, b, "README: no JSON block for %s", mk.id)
		var v map[string]any
		require.NoError(t, json.Unmarshal([]byte(b[1]), &v), "README block of %s", mk.id)
		if v["authentication"] == "<cc-auth>" {
			v["authentication"] = ccAuth
		}
		vars[mk.id] = v
		h := map[string]string{}
		for _, m := range headerDoc.FindAllStringSubmatch(seg, -1) {
			h[m[1]] = m[2]
		}
		headers[mk.id] = h
	}
	return vars, headers
}

// normalize makes values comparable across JSON number representations.
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// The README shows the job variables of every task for given process
// variables; they must be what the models produce.
func TestReadmeDocumentsTheModels(t *testing.T) {
	data, err := os.ReadFile("README.md")
	require.NoError(t, err)
	readme := string(data)
	models := loadModels(t)

	var ids []string
	for _, m := range models {
		require.Contains(t, readme, fmt.Sprintf("| `%s` | `%s` |", m.file, m.proc.ID), "README table")
		for _, tk := range m.proc.tasks() {
			ids = append(ids, tk.ID)
		}
	}
	docVars, docHeaders := readmeDocs(t, readme, ids)

	scope := map[string]any{"mailbox": "someone@contoso.com", "recipient": "friend@contoso.com"}
	element := map[string]any{"subject": "Invoice 42", "from": map[string]any{"emailAddress": map[string]any{"name": "Ann", "address": "ann@fabrikam.com"}}}
	for _, m := range models {
		for _, tk := range m.proc.tasks() {
			s := scope
			if tk.Loop != nil && tk.Loop.Ext.Zeebe != nil {
				lc := tk.Loop.Ext.Zeebe
				s = overlay(scope, map[string]any{lc.InputElement: element})
				require.Contains(t, readme, "`"+lc.InputCollection+"`", "README: input collection of %s", tk.ID)
				require.Contains(t, readme, "`"+lc.InputElement+"`", "README: element variable of %s", tk.ID)
			}
			got, err := applyInputs(tk, s)
			require.NoError(t, err, tk.ID)
			require.Equal(t, normalize(t, docVars[tk.ID]), normalize(t, got), "README job variables of %s (%s)", tk.ID, m.file)
			require.Equal(t, docHeaders[tk.ID], tk.headers(), "README headers of %s (%s)", tk.ID, m.file)
		}
		for _, f := range m.proc.Flows {
			if f.Condition != "" {
				require.Contains(t, readme, "`"+strings.TrimSpace(f.Condition)+"`", "README: condition of flow %s", f.ID)
			}
		}
	}
}
