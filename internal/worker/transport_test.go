package worker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
	"github.com/o365-mail-connector/o365-mail-connector/internal/job"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

// selfSignedCA writes a CA certificate to a PEM file and returns a server
// certificate for 127.0.0.1 signed by it.
func selfSignedCA(t *testing.T) (caFile string, server tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "gateway"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	require.NoError(t, err)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))
	return caFile, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestTLSWithCustomCA(t *testing.T) {
	caFile, cert := selfSignedCA(t)
	g, err := zeebesim.Start(zeebesim.WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	require.NoError(t, err)
	defer g.Close()
	cfg := config.Defaults()
	cfg.ZeebeAddress = g.Addr()
	cfg.ZeebeCACertificatePath = caFile
	c, err := NewClient(cfg)
	require.NoError(t, err)
	defer c.Close()
	start(t, c, testConfig(), completeWith(nil))
	key := g.CreateJob(zeebesim.JobSpec{Type: jobType})
	await(t, g, []int64{key}, func(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted })
}

func TestStreamedJobsAreHandled(t *testing.T) {
	g, c := gateway(t)
	cfg := testConfig()
	cfg.StreamEnabled = true
	cfg.PollInterval = time.Second // streams, not polls, should carry most jobs
	start(t, c, cfg, completeWith(nil))
	require.Eventually(t, func() bool { return g.OpenStreams(jobType) > 0 }, 10*time.Second, 5*time.Millisecond)
	keys := make([]int64, 50)
	for i := range keys {
		keys[i] = g.CreateJob(zeebesim.JobSpec{Type: jobType})
	}
	await(t, g, keys, func(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted })
	streamed := 0
	for _, k := range keys {
		if j, _ := g.Job(k); j.Streamed {
			streamed++
		}
	}
	require.Positive(t, streamed)
}

// A job that timed out or was canceled answers NOT_FOUND: the command is
// dropped, not retried, and the worker goes on.
func TestNotFoundIsDroppedWithoutRetry(t *testing.T) {
	g, c := gateway(t)
	g.InjectFault(zeebesim.Fault{Method: "CompleteJob", Code: codes.NotFound, Times: 1})
	start(t, c, testConfig(), func(_ context.Context, j job.Job) job.Outcome { return job.Outcome{Kind: job.Complete} })
	first := g.CreateJob(zeebesim.JobSpec{Type: jobType})
	require.Eventually(t, func() bool {
		for _, cmd := range g.Commands() {
			if cmd.JobKey == first && cmd.Result == codes.NotFound {
				return true
			}
		}
		return false
	}, 20*time.Second, 5*time.Millisecond)
	second := g.CreateJob(zeebesim.JobSpec{Type: jobType})
	await(t, g, []int64{second}, func(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted })
	n := 0
	for _, cmd := range g.Commands() {
		if cmd.JobKey == first {
			n++
		}
	}
	require.Equal(t, 1, n, "NOT_FOUND is final")
}

// With ZEEBE_CLIENT_ID the client asks the authorization server for a
// token (client credentials with an audience) before talking to the gateway.
func TestOAuthToTheGateway(t *testing.T) {
	t.Setenv("ZEEBE_CLIENT_CONFIG_PATH", filepath.Join(t.TempDir(), "credentials"))
	var requests atomic.Int64
	var form atomic.Value
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_ = r.ParseForm()
		form.Store(r.PostForm)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"gateway-token","token_type":"Bearer","expires_in":3600}`))
	}))
	defer auth.Close()
	g, err := zeebesim.Start()
	require.NoError(t, err)
	defer g.Close()
	cfg := config.Defaults()
	cfg.ZeebeAddress = g.Addr()
	cfg.ZeebeInsecure = true
	cfg.ZeebeClientID, cfg.ZeebeClientSecret, cfg.ZeebeTokenAudience = "worker", "worker-secret", "zeebe-api"
	cfg.ZeebeAuthServerURL = auth.URL
	c, err := NewClient(cfg)
	require.NoError(t, err)
	defer c.Close()
	start(t, c, testConfig(), completeWith(nil))
	key := g.CreateJob(zeebesim.JobSpec{Type: jobType})
	await(t, g, []int64{key}, func(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted })
	require.Positive(t, requests.Load())
	f := form.Load().(url.Values)
	require.Equal(t, "worker", f.Get("client_id"))
	require.Equal(t, "zeebe-api", f.Get("audience"))
}
