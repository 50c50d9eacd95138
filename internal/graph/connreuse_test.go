package graph

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// Keep-alive must hold across calls: a new TCP connection per Graph call
// costs both sides more than the call itself.
func TestConnectionsAreReused(t *testing.T) {
	var conns atomic.Int64
	body := `{"value":[` + strings.Repeat(`{"subject":"s","body":{"content":"x"}},`, 40) + `{"subject":"last"}]}`
	for _, chunked := range []bool{false, true} {
		conns.Store(0)
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if chunked {
				w.(http.Flusher).Flush()
			}
			_, _ = w.Write([]byte(body))
		}))
		s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				conns.Add(1)
			}
		}
		s.Start()
		c, _ := newTestClient(t, s.URL)
		for i := 0; i < 200; i++ {
			if _, err := c.Do(context.Background(), &fakeCreds{}, Request{UserID: "u@x.com", Path: []string{"messages"}}); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		if n := conns.Load(); n > 2 {
			t.Errorf("chunked=%v: %d connections for 200 sequential calls", chunked, n)
		}
	}
}
