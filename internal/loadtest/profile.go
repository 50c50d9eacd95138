package loadtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"time"

	"github.com/o365-mail-connector/o365-mail-connector/internal/app"
	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
)

// ProfileLabel marks the samples of the connector's goroutines in an
// in-process profile, which also holds the simulators' samples.
const ProfileLabel = "side"

// Profile runs the connector in this process over sc's backlog with the CPU
// profiler on, writing the profile to path. Every goroutine the worker
// starts carries the label side=connector, so `go tool pprof
// -tagfocus=side=connector` shows the connector's share alone.
func Profile(ctx context.Context, sc Scenario, path string, logLevel string, poll time.Duration) error {
	s, err := StartSims(Mailboxes(sc.Mailboxes), sc.Latency)
	if err != nil {
		return err
	}
	defer s.Close()
	keys := CreateJobs(s, sc)

	cfg := config.Defaults()
	cfg.ZeebeAddress = s.Zeebe.Addr()
	cfg.ZeebeInsecure = true
	cfg.GraphBaseURL = s.GraphURL()
	cfg.WorkerName = "loadtest-profile"
	cfg.MaxJobsActive = sc.MaxJobsActive
	cfg.Concurrency = sc.Concurrency
	cfg.GraphMailboxConcurrency = sc.MailboxConcurrency
	cfg.PollInterval = poll
	cfg.ManagementAddr = "127.0.0.1:0"
	cfg.LogLevel = logLevel
	secrets := map[string]string{"SECRET_O365_CLIENT_SECRET": ClientSecret}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	var buildErr error
	pprof.Do(runCtx, pprof.Labels(ProfileLabel, "connector"), func(lctx context.Context) {
		rt, err := app.Build(cfg, app.Options{
			LogOutput: io.Discard,
			LookupEnv: func(k string) (string, bool) { v, ok := secrets[k]; return v, ok },
		})
		if err != nil {
			buildErr = err
			return
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			buildErr = err
			return
		}
		go func() { done <- rt.Run(lctx) }()
	})
	if buildErr != nil {
		return buildErr
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	err = AwaitEnded(wctx, s.Zeebe, keys, nil)
	cancel()
	pprof.StopCPUProfile()
	stop()
	if runErr := <-done; err == nil {
		err = runErr
	}
	return err
}

// PrintTop writes the connector's share of the profile, flat and
// cumulative, as `go tool pprof -top` prints it.
func PrintTop(w io.Writer, path string, n int) error {
	for _, order := range []string{"-flat", "-cum"} {
		cmd := exec.Command("go", "tool", "pprof", "-top", order, fmt.Sprintf("-nodecount=%d", n),
			"-tagfocus="+ProfileLabel+"=connector", path)
		cmd.Stdout, cmd.Stderr = w, w
		fmt.Fprintf(w, "\n$ go tool pprof -top %s -nodecount=%d -tagfocus=%s=connector %s\n", order, n, ProfileLabel, path)
		if err := cmd.Run(); err != nil {
			return err
		}
	}
	return nil
}
