package management

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/o365-mail-connector/o365-mail-connector/internal/metrics"
)

func TestReadinessWindowAndFailedProbe(t *testing.T) {
	now := time.Unix(1000, 0)
	r := NewReadiness(15 * time.Second)
	r.now = func() time.Time { return now }
	require.False(t, r.Ready(), "not ready before the first answer")
	r.Mark()
	require.True(t, r.Ready())
	now = now.Add(15 * time.Second)
	require.True(t, r.Ready())
	now = now.Add(time.Millisecond)
	require.False(t, r.Ready(), "stale answer")
	r.Mark()
	r.Unmark()
	require.False(t, r.Ready(), "the latest probe failed")
}

func TestEndpoints(t *testing.T) {
	r := NewReadiness(time.Minute)
	s, err := Listen("127.0.0.1:0", r, metrics.New(), zap.NewNop())
	require.NoError(t, err)
	defer s.Close()
	get := func(path string) int {
		resp, err := http.Get("http://" + s.Addr() + path)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 200, get("/healthz"))
	require.Equal(t, 503, get("/readyz"))
	r.Mark()
	require.Equal(t, 200, get("/readyz"))
	require.Equal(t, 200, get("/metrics"))
	require.Equal(t, 404, get("/other"))
}
