// Command loadtest drives the real worker pipeline against the in-process
// Zeebe gateway and Graph simulator and prints one Markdown table: the
// connector beside a bare zbc worker doing one plain HTTP request per job.
//
//	go run ./cmd/loadtest [-quick] [-only a1,b] [-cpuprofile cpu.pprof]
//
// The baseline is cmd/loadtest-baseline, built like the connector (static,
// -trimpath) and started as a child process, so that its figures carry
// nothing of this command or the simulators.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/o365-mail-connector/o365-mail-connector/internal/cli"
	"github.com/o365-mail-connector/o365-mail-connector/internal/loadtest"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "connector-profiled" {
		os.Exit(connectorProfiled(os.Getenv("LOADTEST_CPUPROFILE")))
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// connectorProfiled runs the connector exactly as `o365-mail-connector run`
// does, in this binary, under the CPU profiler: the in-process profile
// misses the worker's garbage collection and scheduling, which the child
// process pays for.
func connectorProfiled(path string) int {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "connector-profiled:", err)
		return 1
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "connector-profiled:", err)
		return 1
	}
	defer pprof.StopCPUProfile()
	defer func() {
		// Allocations over the whole run (alloc_space), for what drives
		// the collector.
		if mf, err := os.Create(strings.TrimSuffix(path, ".pprof") + "-allocs.pprof"); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(mf, 0)
			mf.Close()
		}
	}()
	return cli.Main([]string{"run"}, cli.Env{Version: "loadtest", Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv})
}

func run() error {
	repeat := flag.Int("repeat", 3, "runs of each worker per scenario, alternating; the table shows the median")
	repeatA := flag.Int("repeat-a", 9, "rounds in scenarios (a), whose throughput targets are ratios to the baseline, judged on the median of the rounds' ratios: more rounds than elsewhere, so that two rounds hit by a busy neighbour cannot decide")
	quick := flag.Bool("quick", false, "about a fifth of the jobs, for a smoke run")
	jobsA := flag.Int("jobs-a", 10000, "jobs per run in scenario (a)")
	jobsB := flag.Int("jobs-b", 12800, "jobs per run in scenario (b)")
	jobsC := flag.Int("jobs-c", 3000, "jobs per run in scenario (c)")
	only := flag.String("only", "", "comma-separated scenarios to run (a1,a100,b,c); empty = all")
	results := flag.String("results", ".notes/bench-results.md", "file for the latest figures (empty = none; skipped when its directory does not exist)")
	bin := flag.String("connector-bin", "", "prebuilt o365-mail-connector binary (default: go build into a temporary directory)")
	logLevel := flag.String("log-level", "info", "the connector's LOG_LEVEL (info is its default)")
	poll := flag.Duration("poll-interval", 100*time.Millisecond, "poll interval of both workers")
	settle := flag.Duration("idle-settle", time.Second, "how long an idle worker runs before its RSS is read")
	afterLoad := flag.Duration("idle-after-load", 4*time.Second, "how long after its last job a worker's RSS is read again (0 = not measured)")
	profile := flag.Bool("profile", true, "after the table, run one scenario's connector in-process under the CPU profiler and print the top entries")
	cpuprofile := flag.String("cpuprofile", "", "keep the CPU profile in this file (default: a temporary file)")
	childProfile := flag.String("child-profile-dir", "", "run the connector as this binary's connector-profiled subcommand and write its CPU profile for each measured run into this directory (diagnosis only: the measured figures are then not the release binary's)")
	var connEnv envList
	flag.Var(&connEnv, "connector-env", "KEY=VALUE added to the connector's environment (repeatable), e.g. GOGC=200 for an experiment")
	simProfile := flag.String("sim-profile-dir", "", "write a CPU profile of the simulators (this process) over each measured run into this directory")
	profScenario := flag.String("profile-scenario", "a100", "the scenario profiled")
	flag.IntVar(&loadtest.InboxMessages, "messages", loadtest.InboxMessages, "messages in each inbox (the listMessages answer grows by about 1.4 KB each)")
	flag.Parse()
	if *quick {
		*jobsA, *jobsB, *jobsC = max(*jobsA/5, 1), max(*jobsB/5, 1), max(*jobsC/3, 1)
		*settle = min(*settle, 500*time.Millisecond)
		*repeat, *repeatA = 1, 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()

	dir, err := os.MkdirTemp("", "loadtest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	connector := *bin
	if connector == "" {
		connector = filepath.Join(dir, "o365-mail-connector")
		fmt.Fprintln(os.Stderr, "building the connector…")
		if err := build(connector, "./cmd/o365-mail-connector"); err != nil {
			return err
		}
	}
	baseline := filepath.Join(dir, "loadtest-baseline")
	fmt.Fprintln(os.Stderr, "building the baseline…")
	if err := build(baseline, "./cmd/loadtest-baseline"); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	r := &loadtest.Runner{
		ConnectorBin: connector, BaselineCmd: []string{baseline},
		LogLevel: *logLevel, PollInterval: *poll, IdleSettle: *settle, IdleAfterLoad: *afterLoad, Progress: os.Stderr,
		SimProfileDir: *simProfile,
		ConnectorEnv:  connEnv,
	}
	if *childProfile != "" {
		r.ConnectorCmd = []string{self, "connector-profiled"}
		r.ConnectorProfileDir = *childProfile
	}

	var scs []loadtest.Scenario
	for _, sc := range loadtest.Scenarios(*jobsA, *jobsB, *jobsC) {
		if *only == "" || contains(*only, sc.Name) {
			scs = append(scs, sc)
		}
	}
	roundsOf := func(sc loadtest.Scenario) int {
		if sc.Latency == 0 {
			return max(*repeatA, 1)
		}
		return max(*repeat, 1)
	}
	var res, all []loadtest.Result
	for _, sc := range scs {
		fmt.Fprintf(os.Stderr, "%s\n", sc.Title)
		// Connector and baseline alternate, so that a change in the
		// machine's load hits both alike; each row is the median run.
		var runs []loadtest.Result
		for i := range roundsOf(sc) {
			// Every other round runs the workers in reverse order, so that
			// a drift within a round does not favour the one that goes
			// first.
			kinds := sc.Kinds()
			if i%2 == 1 {
				kinds = slices.Clone(kinds)
				slices.Reverse(kinds)
			}
			for _, kind := range kinds {
				rr, err := r.Run(ctx, sc, kind)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", sc.Name, kind, err)
				}
				runs = append(runs, rr)
			}
		}
		all = append(all, runs...)
		for _, kind := range sc.Kinds() {
			res = append(res, loadtest.Median(runs, kind))
		}
	}

	var out bytes.Buffer
	fmt.Fprintf(&out, "Load test, %s, %s, %d CPUs (%s), connector LOG_LEVEL=%s, poll interval %s, %d messages per inbox\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.Version(), runtime.NumCPU(), cpuModel(), *logLevel, *poll, loadtest.InboxMessages)
	loadtest.Describe(&out, scs)
	fmt.Fprintln(&out)
	loadtest.Table(&out, res, all)
	if len(all) > len(res) {
		fmt.Fprintf(&out, "\nEach row is the median by jobs/s of %s; connector and baseline runs alternate in rounds, in reverse order every other round. All runs:\n\n", roundsText(scs, roundsOf))
		loadtest.Runs(&out, all)
	}
	fmt.Fprintln(&out, "\nTargets:")
	checks := loadtest.Checks(res, all)
	loadtest.WriteChecks(&out, checks)
	fmt.Fprintln(&out)
	fmt.Fprintln(&out, loadtest.Notes)

	if *profile && *cpuprofile == "" {
		f, err := os.CreateTemp("", "loadtest-*.pprof")
		if err != nil {
			return err
		}
		f.Close()
		defer os.Remove(f.Name())
		*cpuprofile = f.Name()
	}
	if *profile {
		for _, sc := range loadtest.Scenarios(*jobsA, *jobsB, *jobsC) {
			if sc.Name != *profScenario {
				continue
			}
			fmt.Fprintf(os.Stderr, "profiling %s in-process…\n", sc.Title)
			if err := loadtest.Profile(ctx, sc, *cpuprofile, *logLevel, *poll); err != nil {
				return fmt.Errorf("profile: %w", err)
			}
			fmt.Fprintf(&out, "\nCPU profile of %s, connector in-process (connector goroutines only):\n```", sc.Title)
			if err := loadtest.PrintTop(&out, *cpuprofile, 25); err != nil {
				fmt.Fprintln(&out, "pprof:", err)
			}
			fmt.Fprintln(&out, "```")
		}
	}
	fmt.Fprintf(&out, "\n(run took %s)\n", time.Since(start).Round(time.Second))

	_, _ = io.Copy(os.Stdout, bytes.NewReader(out.Bytes()))
	if *results != "" {
		if st, err := os.Stat(filepath.Dir(*results)); err == nil && st.IsDir() {
			if err := os.WriteFile(*results, append([]byte("# Benchmark results (latest `make bench`)\n\n"), out.Bytes()...), 0o644); err != nil {
				return err
			}
			fmt.Fprintln(os.Stderr, "figures written to", *results)
		}
	}
	return nil
}

// roundsText says how many rounds each scenario ran.
func roundsText(scs []loadtest.Scenario, roundsOf func(loadtest.Scenario) int) string {
	var parts []string
	for _, sc := range scs {
		parts = append(parts, fmt.Sprintf("%d (%s)", roundsOf(sc), sc.Name))
	}
	return "the runs of each scenario: " + strings.Join(parts, ", ")
}

func contains(list, name string) bool {
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == name {
			return true
		}
	}
	return false
}

// build compiles a command as `make build` compiles the connector, from the
// module root.
func build(out, pkg string) error {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// envList is a repeatable KEY=VALUE flag.
type envList []string

func (e *envList) String() string { return strings.Join(*e, ",") }

func (e *envList) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}
