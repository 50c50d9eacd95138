package loadtest

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Scenarios returns the benchmark's load shapes; jobs scales the job
// counts (1 = the default run).
func Scenarios(jobsA, jobsB, jobsC int) []Scenario {
	return []Scenario{
		{Name: "a1", Title: "(a) Graph 0 ms, 1 mailbox", Jobs: jobsA, Mailboxes: 1,
			MaxJobsActive: 32, Concurrency: 16, MailboxConcurrency: 4},
		{Name: "a100", Title: "(a) Graph 0 ms, 100 mailboxes", Jobs: jobsA, Mailboxes: 100,
			MaxJobsActive: 32, Concurrency: 16, MailboxConcurrency: 4},
		{Name: "b", Title: "(b) Graph 100 ms, 64 mailboxes, concurrency 128", Jobs: jobsB, Mailboxes: 64,
			Latency: 100 * time.Millisecond, MaxJobsActive: 256, Concurrency: 128, MailboxConcurrency: 4},
		{Name: "c", Title: "(c) Graph 2 s, 1,000 jobs in flight", Jobs: jobsC, Mailboxes: 500,
			Latency: 2 * time.Second, MaxJobsActive: 1000, Concurrency: 1000, MailboxConcurrency: 4},
	}
}

// Targets of the issue.
const (
	TargetVsBaseline = 0.85
	TargetVsLittle   = 0.95
	TargetIdleRSS    = 25 << 20
	TargetPeakRSS    = 120 << 20 // with 1,000 jobs in flight
)

func kib(b float64) string {
	if b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f KiB", b/1024)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2f ms", float64(d)/1e6)
}

func find(results []Result, name string, kind Kind) (Result, bool) {
	for _, r := range results {
		if r.Scenario.Name == name && r.Kind == kind {
			return r, true
		}
	}
	return Result{}, false
}

func ratio(results, runs []Result, r Result) string {
	if l := r.Scenario.LittleLimit(); l > 0 && r.Scenario.Name == "b" {
		return fmt.Sprintf("%.2f × Little (%.0f/s)", r.JobsPerSec/l, l)
	}
	if r.Kind == Connector && r.Scenario.Latency == 0 {
		if iv, ok := judgedRatio(runs, r.Scenario.Name); ok {
			// The figure the target is judged on, not the ratio of the
			// two rows, which may come from different rounds.
			if iv.Bounded {
				return fmt.Sprintf("%.3f × baseline (median of %d rounds; %s)", iv.Median, iv.N, iv.bounds())
			}
			return fmt.Sprintf("%.3f × baseline (median of %d rounds)", iv.Median, iv.N)
		}
		if b, ok := find(results, r.Scenario.Name, Baseline); ok && b.JobsPerSec > 0 {
			return fmt.Sprintf("%.2f × baseline", r.JobsPerSec/b.JobsPerSec)
		}
	}
	if r.Kind == LimitedBaseline && r.JobsPerSec > 0 {
		if c, ok := find(results, r.Scenario.Name, Connector); ok {
			return fmt.Sprintf("connector %.2f × this", c.JobsPerSec/r.JobsPerSec)
		}
	}
	return "—"
}

// Table writes the results, one median run per row, as a Markdown table;
// runs are all the runs they were drawn from (nil: the results are the
// runs).
func Table(w io.Writer, results, runs []Result) {
	if runs == nil {
		runs = results
	}
	fmt.Fprintln(w, "| scenario | worker | jobs | jobs/s | ratio | p50 | p99 | overhead/job | CPU s / 1k jobs | allocated / job | GCs / 1k jobs | RSS idle | RSS idle after load | RSS peak | token requests | 429s | simulators' CPU s / 1k jobs |")
	fmt.Fprintln(w, "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		lat := ""
		if !r.ExactActivation {
			lat = "¹"
		}
		simPer1000 := 0.0
		if r.Completed > 0 {
			simPer1000 = r.SimCPU.Seconds() * 1000 / float64(r.Completed)
		}
		after := "—"
		if r.RSSAfterLoad > 0 {
			after = mib(r.RSSAfterLoad)
		}
		fmt.Fprintf(w, "| %s | %s | %d | %.0f%s | %s | %s%s | %s%s | %s | %.3f | %s | %.1f | %s | %s | %s | %d | %d | %.3f |\n",
			r.Scenario.Title, r.Kind, r.Completed, r.JobsPerSec, lat, ratio(results, runs, r),
			ms(r.P50), lat, ms(r.P99), lat, ms(r.Overhead), r.CPUPer1000.Seconds(),
			kib(r.AllocPerJob), r.GCsPer1000,
			mib(r.RSSIdle), after, mib(r.RSSPeak), r.TokenRequests, r.Throttled429, simPer1000)
	}
	for _, r := range results {
		if !r.ExactActivation {
			fmt.Fprintln(w, "\n¹ measured from job creation (worker start-up included): some job was activated more than once.")
			break
		}
	}
}

// Check is one target and whether it was met. An Info check is a figure
// shown beside the targets that the issue does not set.
type Check struct {
	Target string
	Got    string
	Met    bool
	Info   bool
}

// Checks evaluates the targets: throughput on the median results,
// and the ceilings and counts (RSS, token requests, 429s, failed jobs) on the
// worst of every connector run in runs, so that a run that happened not to
// be the median cannot hide a breach. Without runs, the results are the
// runs.
func Checks(results, runs []Result) []Check {
	if runs == nil {
		runs = results
	}
	var out []Check
	for _, r := range results {
		if r.Kind != Connector {
			continue
		}
		sc := r.Scenario
		w := worstOf(runs, sc.Name)
		if sc.Latency == 0 {
			if b, ok := find(results, sc.Name, Baseline); ok && b.JobsPerSec > 0 {
				q := r.JobsPerSec / b.JobsPerSec
				head := fmt.Sprintf("%.2f", q)
				details := []string{fmt.Sprintf("%.0f vs %.0f jobs/s", r.JobsPerSec, b.JobsPerSec)}
				if iv, ok := judgedRatio(runs, sc.Name); ok {
					// Judged round by round (see PairedRatios); the ratio of
					// the two median rows stands beside it.
					q, head = iv.Median, iv.String()
					details[0] = fmt.Sprintf("%.2f from the medians, %s", r.JobsPerSec/b.JobsPerSec, details[0])
				}
				if l, ok := find(results, sc.Name, LimitedBaseline); ok && l.JobsPerSec > 0 {
					// Beside the verdict, not in it: the target is the
					// issue's baseline.
					details = append(details, fmt.Sprintf("%.2f × the limited baseline's %.0f", r.JobsPerSec/l.JobsPerSec, l.JobsPerSec))
				}
				got := fmt.Sprintf("%s (%s)", head, strings.Join(details, "; "))
				out = append(out, target(fmt.Sprintf("%s: throughput ≥ %.2f × baseline", sc.Name, TargetVsBaseline), got, q >= TargetVsBaseline))
			}
		}
		if sc.Name == "b" {
			q := r.JobsPerSec / sc.LittleLimit()
			out = append(out, target(fmt.Sprintf("%s: throughput ≥ %.2f × Little limit %.0f/s", sc.Name, TargetVsLittle, sc.LittleLimit()),
				fmt.Sprintf("%.2f (%.0f jobs/s)", q, r.JobsPerSec), q >= TargetVsLittle))
		}
		of := fmt.Sprintf(" (worst of %d runs)", w.runs)
		if w.runs == 1 {
			of = ""
		}
		out = append(out, target(fmt.Sprintf("%s: RSS idle ≤ 25 MiB", sc.Name), mib(w.rssIdle)+of, w.rssIdle <= TargetIdleRSS))
		if w.rssAfterLoad > 0 {
			// The idle figure is the idle process; after a burst
			// the memory of its concurrency takes a few seconds to go.
			out = append(out, Check{Target: fmt.Sprintf("%s: RSS idle after load", sc.Name), Got: mib(w.rssAfterLoad) + of, Info: true})
		}
		if sc.Concurrency >= 1000 {
			out = append(out, target(fmt.Sprintf("%s: RSS peak ≤ 120 MiB with %d jobs in flight", sc.Name, sc.Concurrency), mib(w.rssPeak)+of, w.rssPeak <= TargetPeakRSS))
		}
		out = append(out, target(fmt.Sprintf("%s: one token request for one credential set", sc.Name), w.tokens+of, w.tokensOK))
		out = append(out, target(fmt.Sprintf("%s: zero 429s with the per-mailbox limit on", sc.Name), fmt.Sprint(w.throttled)+of, w.throttled == 0))
		if w.failed > 0 || w.incomplete > 0 {
			out = append(out, target(fmt.Sprintf("%s: every job completed at the first attempt", sc.Name),
				fmt.Sprintf("%d failed jobs, %d runs with jobs left", w.failed, w.incomplete)+of, false))
		}
	}
	return out
}

// worst is the least favourable figure of a scenario's connector runs.
type worst struct {
	runs             int
	rssIdle, rssPeak int64
	rssAfterLoad     int64
	tokens           string // the token request counts that were not 1, or "1"
	tokensOK         bool
	throttled        int // 429s over all runs
	failed           int // failed jobs over all runs
	incomplete       int // runs that did not complete every job
}

func worstOf(runs []Result, scenario string) worst {
	w := worst{tokens: "1", tokensOK: true}
	var bad []string
	for _, r := range runs {
		if r.Kind != Connector || r.Scenario.Name != scenario {
			continue
		}
		w.runs++
		w.rssIdle = max(w.rssIdle, r.RSSIdle)
		w.rssPeak = max(w.rssPeak, r.RSSPeak)
		w.rssAfterLoad = max(w.rssAfterLoad, r.RSSAfterLoad)
		if r.TokenRequests != 1 {
			w.tokensOK = false
			bad = append(bad, fmt.Sprint(r.TokenRequests))
		}
		w.throttled += r.Throttled429
		w.failed += r.Failed
		if r.Completed != r.Scenario.Jobs {
			w.incomplete++
		}
	}
	if len(bad) > 0 {
		w.tokens = strings.Join(bad, ", ")
	}
	return w
}

func target(name, got string, met bool) Check { return Check{Target: name, Got: got, Met: met} }

// WriteChecks lists the targets.
func WriteChecks(w io.Writer, checks []Check) {
	for _, c := range checks {
		mark := "met"
		switch {
		case c.Info:
			mark = "shown, not a target"
		case !c.Met:
			mark = "MISSED"
		}
		fmt.Fprintf(w, "- %s: %s — %s\n", c.Target, c.Got, mark)
	}
}

// Missed lists the targets not met.
func Missed(checks []Check) []string {
	var out []string
	for _, c := range checks {
		if !c.Met && !c.Info {
			out = append(out, c.Target+" (got "+c.Got+")")
		}
	}
	return out
}

// Notes explains the columns, for the README and the results file.
const Notes = `Columns: jobs/s over the run (first activation to last completion) with a
backlog of all jobs created up front; p50/p99 from activation (the poll that
took the job) to the CompleteJob command at the gateway; overhead/job = mean
latency − mean time inside the Graph simulator's handler (it includes time a
job waits in the worker's own buffer, MaxJobsActive − concurrency); CPU is
utime+stime of the worker process from its first poll to the last completion;
allocated/job and GCs/1k jobs come from the worker's Go runtime counters
(go_memstats_alloc_bytes_total, go_gc_duration_seconds_count on its /metrics)
over the same window and, unlike CPU time, do not vary with the machine's
load; RSS idle = VmRSS of a freshly started worker after it has polled an
empty job type for a while; RSS idle after load = VmRSS of the loaded worker a
few seconds after its last job; RSS peak = VmHWM; the last column is the load generator's own CPU (Zeebe,
Graph and identity simulators) over the same window, which shares the
machine with the worker. Both workers run as child processes against the same
in-process simulators. The baseline is a bare zbc JobWorker (same
MaxJobsActive, concurrency, poll interval, fetched variables) whose handler
makes one GET with a pre-fetched token and completes the job whatever Graph
answered; the connector authenticates with the client-credentials flow
against the identity simulator. Graph enforces 4 requests in flight per
mailbox (429 beyond). Where that limit binds (more handlers than the
mailboxes have slots: (a) with one mailbox), a limited baseline runs too:
the same bare worker holding itself to GRAPH_MAILBOX_CONCURRENCY requests
in flight per mailbox, as the connector does; the target stays against the
baseline without the limit. Runs alternate in rounds (connector, baseline,
limited baseline, in reverse order every other round), and the throughput
target of (a) is judged on the median of the rounds' own ratios, connector
÷ baseline of the same round, which cancels the drift of a shared
machine's load between rounds; its interval is distribution-free (order
statistics of the rounds' ratios, at least 95 %).`

// Median returns kind's run with the median throughput (the lower middle
// one of an even count).
func Median(runs []Result, kind Kind) Result {
	var of []Result
	for _, r := range runs {
		if r.Kind == kind {
			of = append(of, r)
		}
	}
	if len(of) == 0 {
		return Result{Kind: kind}
	}
	slices.SortFunc(of, func(a, b Result) int { return cmp.Compare(a.JobsPerSec, b.JobsPerSec) })
	return of[(len(of)-1)/2]
}

// Runs writes every run's throughput and CPU, per scenario and worker, in
// the order they ran.
func Runs(w io.Writer, runs []Result) {
	type key struct {
		name string
		kind Kind
	}
	var order []key
	lines := map[key][]string{}
	for _, r := range runs {
		k := key{r.Scenario.Name, r.Kind}
		if _, seen := lines[k]; !seen {
			order = append(order, k)
		}
		lines[k] = append(lines[k], fmt.Sprintf("%.0f jobs/s (%.3f CPU s/1k)", r.JobsPerSec, r.CPUPer1000.Seconds()))
	}
	for _, k := range order {
		fmt.Fprintf(w, "- %s %s: %s\n", k.name, k.kind, strings.Join(lines[k], ", "))
		if k.kind != Baseline {
			continue
		}
		if rounds := PairedRatios(runs, k.name, Connector, Baseline); len(rounds) > 1 {
			q := make([]string, len(rounds))
			for i, x := range rounds {
				q[i] = fmt.Sprintf("%.2f", x)
			}
			fmt.Fprintf(w, "- %s connector ÷ baseline, round by round: %s\n", k.name, strings.Join(q, ", "))
		}
	}
}

// Describe writes the scenarios' settings.
func Describe(w io.Writer, scs []Scenario) {
	var b strings.Builder
	for _, s := range scs {
		fmt.Fprintf(&b, "- %s: %d jobs, %d mailbox(es), Graph latency %s, MaxJobsActive %d, concurrency %d, GRAPH_MAILBOX_CONCURRENCY %d\n",
			s.Title, s.Jobs, s.Mailboxes, s.Latency, s.MaxJobsActive, s.Concurrency, s.MailboxConcurrency)
	}
	fmt.Fprint(w, b.String())
}
