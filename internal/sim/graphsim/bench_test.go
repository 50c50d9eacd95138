package graphsim

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func benchServer(b *testing.B, n int) *Server {
	s := newServer(b, WithMailboxConcurrency(0), WithRequestLog(1000, 1024))
	s.AddMailbox("a@x.test")
	seed(s, "a@x.test", n)
	return s
}

func benchGet(b *testing.B, s *Server, path string) {
	u := s.URL() + path
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", u, nil)
			req.Header.Set("Authorization", "Bearer t")
			r, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if r.StatusCode != 200 {
				b.Errorf("status %d", r.StatusCode)
				return
			}
		}
	})
}

// Deep pages of a big mailbox cost the page, not the mailbox.
func BenchmarkListMessagesDeepPage(b *testing.B) {
	s := benchServer(b, 20000)
	benchGet(b, s, "/users/a@x.test/mailFolders/inbox/messages?$top=50&$skip=15000")
}

func BenchmarkListMessagesSelect(b *testing.B) {
	s := benchServer(b, 20000)
	benchGet(b, s, "/users/a@x.test/messages?$top=50&$select=subject,from,receivedDateTime")
}

func BenchmarkListMessagesFilter(b *testing.B) {
	s := benchServer(b, 20000)
	benchGet(b, s, "/users/a@x.test/messages?$top=10&$filter="+url.QueryEscape("isRead eq false and importance eq 'high'"))
}

func BenchmarkSendMail(b *testing.B) {
	s := newServer(b, WithMailboxConcurrency(0), WithRequestLog(1000, 1024))
	s.AddMailbox("a@x.test")
	s.AddMailbox("b@x.test")
	u := s.URL() + "/users/a@x.test/sendMail"
	body := `{"message":{"subject":"s","body":{"contentType":"text","content":"hello"},"toRecipients":[{"emailAddress":{"address":"b@x.test"}}]}}`
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", u, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer t")
			r, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if r.StatusCode != 202 {
				b.Errorf("status %d", r.StatusCode)
				return
			}
		}
	})
}
