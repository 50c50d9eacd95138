package graphsim

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
)

// hold starts n requests that wait in a latency fault until cancel is called.
func hold(t *testing.T, s *Server, mb *Mailbox, n int) (cancel func()) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = tryCall(ctx, s, "GET", "/users/"+mb.UPN+"/mailFolders/inbox/messages", nil)
		}()
	}
	return func() { stop(); wg.Wait() }
}

func TestMailboxConcurrencyThrottle(t *testing.T) {
	s := newServer(t, WithThrottleRetryAfter(2500*time.Millisecond))
	a := s.AddMailbox("a@x.test")
	s.AddMailbox("b@x.test")
	s.InjectFault(Fault{Path: `/mailFolders/inbox/messages$`, Latency: time.Hour})

	release := hold(t, s, a, 4)
	eventually(t, "4 requests in flight", func() bool { return a.inflight.Load() == 4 })
	r := call(t, s, "GET", "/users/a@x.test/mailFolders", nil)
	wantStatus(t, r, 429, "ApplicationThrottled")
	if r.header.Get("Retry-After") != "3" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// Other mailboxes are not affected.
	wantStatus(t, call(t, s, "GET", "/users/b@x.test/mailFolders", nil), 200, "")

	release()
	eventually(t, "slots released", func() bool { return a.inflight.Load() == 0 })
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/mailFolders", nil), 200, "")
	st := s.Stats()
	if st.Throttled429 != 1 || st.MaxConcurrentPerMailbox != 4 {
		t.Fatalf("stats %+v", st)
	}
	var throttled int
	for _, q := range s.Requests() {
		if q.Throttled {
			throttled++
			if q.Status != 429 || q.Mailbox != "a@x.test" {
				t.Fatalf("throttled entry %+v", q)
			}
		}
	}
	if throttled != 1 {
		t.Fatalf("%d throttled entries", throttled)
	}
}

func TestMailboxConcurrencyUnlimited(t *testing.T) {
	s := newServer(t, WithMailboxConcurrency(0))
	a := s.AddMailbox("a@x.test")
	s.InjectFault(Fault{Path: `/messages$`, Latency: time.Hour})
	release := hold(t, s, a, 6)
	defer release()
	eventually(t, "6 requests admitted", func() bool { return a.inflight.Load() == 6 })
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/mailFolders", nil), 200, "")
	if st := s.Stats(); st.Throttled429 != 0 || st.MaxConcurrentPerMailbox != 7 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLatencyHonoursCancellation(t *testing.T) {
	s := newServer(t, WithLatency(time.Hour))
	a := s.AddMailbox("a@x.test")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := tryCall(ctx, s, "GET", "/users/a@x.test/mailFolders", nil)
		done <- err
	}()
	eventually(t, "request waiting in latency", func() bool { return a.inflight.Load() == 1 })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("request answered despite an hour of latency")
	}
	eventually(t, "slot released", func() bool { return a.inflight.Load() == 0 })
	eventually(t, "request logged", func() bool { return len(s.Requests()) == 1 })
	if q := s.Requests()[0]; q.Status != 0 {
		t.Fatalf("cancelled request logged with status %d", q.Status)
	}
	s.SetLatency(0)
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/mailFolders", nil), 200, "")
}

func TestFaultStatusTimesAndMethod(t *testing.T) {
	s := newServer(t)
	s.AddMailbox("a@x.test")
	s.AddMailbox("b@x.test")
	s.InjectFault(Fault{Method: "POST", Path: `/users/[^/]+/sendMail$`, Status: 503, Code: "ServiceNotAvailable", Message: "Service unavailable.", RetryAfter: "2", Times: 1})
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/messages", nil), 200, "") // other method
	r := call(t, s, "POST", "/users/a@x.test/sendMail", sendMailBody("b@x.test"))
	wantStatus(t, r, 503, "ServiceNotAvailable")
	if r.header.Get("Retry-After") != "2" || r.body["error"].(map[string]any)["message"] != "Service unavailable." {
		t.Fatalf("fault answer %v %s", r.header, r.raw)
	}
	if len(s.Messages("b@x.test", "inbox")) != 0 {
		t.Fatal("a faulted send without Apply delivered")
	}
	wantStatus(t, call(t, s, "POST", "/users/a@x.test/sendMail", sendMailBody("b@x.test")), 202, "")
	if len(s.Messages("b@x.test", "inbox")) != 1 {
		t.Fatal("send after the fault did not deliver")
	}

	// Faults come before normal handling, even for unknown mailboxes; the
	// default code follows the status.
	s.InjectFault(Fault{Path: `^/users/nobody`, Status: 500})
	wantStatus(t, call(t, s, "GET", "/users/nobody@x.test/messages", nil), 500, "InternalServerError")
	s.ClearFaults()
	wantStatus(t, call(t, s, "GET", "/users/nobody@x.test/messages", nil), 404, "ErrorInvalidUser")
	if st := s.Stats(); st.Faults != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFaultApplyDeliversAnyway(t *testing.T) {
	s := newServer(t)
	s.AddMailbox("a@x.test")
	s.AddMailbox("b@x.test")
	s.InjectFault(Fault{Method: "POST", Path: `/sendMail$`, Status: 504, Code: "GatewayTimeout", Apply: true, Times: 3})
	for i := 0; i < 3; i++ {
		wantStatus(t, call(t, s, "POST", "/users/a@x.test/sendMail", sendMailBody("b@x.test")), 504, "GatewayTimeout")
	}
	wantStatus(t, call(t, s, "POST", "/users/a@x.test/sendMail", sendMailBody("b@x.test")), 202, "")
	if n := len(s.Messages("b@x.test", "inbox")); n != 4 {
		t.Fatalf("%d copies delivered, want 4", n)
	}
	if n := len(s.Messages("a@x.test", "sentitems")); n != 4 {
		t.Fatalf("%d sent copies, want 4", n)
	}
	// Apply with a cut connection: delivered, no answer.
	s.InjectFault(Fault{Path: `/sendMail$`, CutConnection: true, Apply: true, Times: 1})
	if _, err := tryCall(context.Background(), s, "POST", "/users/a@x.test/sendMail", sendMailBody("b@x.test")); err == nil {
		t.Fatal("cut connection answered")
	}
	if n := len(s.Messages("b@x.test", "inbox")); n != 5 {
		t.Fatalf("%d copies after cut, want 5", n)
	}
}

func TestFaultBodyCutAndOversize(t *testing.T) {
	s := newServer(t)
	s.AddMailbox("a@x.test")

	s.InjectFault(Fault{Path: `/mailFolders$`, Body: []byte(`{"value":[`)})
	r, err := tryCall(context.Background(), s, "GET", "/users/a@x.test/mailFolders", nil)
	if err == nil || r != nil {
		// tryCall refuses invalid JSON; read raw instead.
		t.Fatalf("malformed body decoded: %v", r)
	}
	s.ClearFaults()

	s.InjectFault(Fault{Path: `/mailFolders$`, Status: 502, Body: []byte("<html>Bad gateway</html>")})
	r = call(t, s, "GET", "/users/a@x.test/mailFolders", nil)
	if r.status != 502 || string(r.raw) != "<html>Bad gateway</html>" {
		t.Fatalf("raw body fault: %d %s", r.status, r.raw)
	}
	s.ClearFaults()

	s.InjectFault(Fault{Path: `/messages$`, CutConnection: true})
	if _, err := tryCall(context.Background(), s, "GET", "/users/a@x.test/messages", nil); err == nil {
		t.Fatal("cut connection answered")
	}
	s.ClearFaults()
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/messages", nil), 200, "")
	cutLogged := false
	for _, q := range s.Requests() {
		if q.Fault && q.Status == 0 && q.Path == "/users/a@x.test/messages" {
			cutLogged = true
		}
	}
	if !cutLogged {
		t.Fatalf("cut not logged: %+v", s.Requests())
	}

	const size = 5<<20 + 3
	s.InjectFault(Fault{Path: `/messages$`, OversizeBytes: size, Times: 1})
	r = call(t, s, "GET", "/users/a@x.test/messages", nil)
	if r.status != 200 || len(r.raw) != size || !json.Valid(r.raw) {
		t.Fatalf("oversize: %d, %d bytes", r.status, len(r.raw))
	}
}

func TestFaultLatencyThenAnswer(t *testing.T) {
	s := newServer(t)
	a := s.AddMailbox("a@x.test")
	// A pure latency fault delays the normal answer.
	s.InjectFault(Fault{Path: `/mailFolders$`, Latency: time.Millisecond, Times: 1})
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/mailFolders", nil), 200, "")

	// A long latency with a status: the client gives up, the server notices.
	s.InjectFault(Fault{Path: `/mailFolders$`, Latency: time.Hour, Status: 504})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := tryCall(ctx, s, "GET", "/users/a@x.test/mailFolders", nil)
		done <- err
	}()
	eventually(t, "request waiting", func() bool { return a.inflight.Load() == 1 })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("answered")
	}
	eventually(t, "server gave up waiting", func() bool { return a.inflight.Load() == 0 })
}

func TestRequestLog(t *testing.T) {
	s := newServer(t)
	s.AddMailbox("Alice@x.test")
	call(t, s, "GET", "/users/alice@x.test/messages?$top=5", nil)
	call(t, s, "POST", "/users/alice@x.test/sendMail", sendMailBody("b@ext.test"), "client-request-id", "c-1")
	call(t, s, "GET", "/users/ghost@x.test/messages", nil, "Authorization", "")
	reqs := s.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	if q := reqs[0]; q.Method != "GET" || q.Path != "/users/alice@x.test/messages" || q.RawQuery != "$top=5" || q.Mailbox != "Alice@x.test" || q.Status != 200 || !q.Authorization {
		t.Fatalf("first %+v", q)
	}
	var sent map[string]any
	if q := reqs[1]; q.Status != 202 || q.ClientRequestID != "c-1" || json.Unmarshal(q.Body, &sent) != nil || sent["message"] == nil {
		t.Fatalf("second %+v", q)
	}
	if q := reqs[2]; q.Status != 401 || q.Authorization || q.Mailbox != "ghost@x.test" {
		t.Fatalf("third %+v", q)
	}
	if st := s.Stats(); st.Requests != 3 {
		t.Fatalf("stats %+v", st)
	}
	s.ResetRequests()
	if len(s.Requests()) != 0 || s.Stats().Requests != 0 {
		t.Fatal("reset")
	}

	small := newServer(t, WithRequestLog(3, 10))
	small.AddMailbox("a@x.test")
	for i := 0; i < 5; i++ {
		call(t, small, "GET", fmt.Sprintf("/users/a@x.test/messages?$skip=%d", i), nil)
	}
	call(t, small, "POST", "/users/a@x.test/sendMail", sendMailBody("b@ext.test"))
	reqs = small.Requests()
	if len(reqs) != 3 || reqs[0].RawQuery != "$skip=3" || reqs[1].RawQuery != "$skip=4" || len(reqs[2].Body) != 10 || !reqs[2].BodyTruncated {
		t.Fatalf("bounded log %+v", reqs)
	}
	if small.Stats().Requests != 6 {
		t.Fatalf("stats %+v", small.Stats())
	}
}
