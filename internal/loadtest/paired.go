package loadtest

import (
	"fmt"
	"math"
	"slices"
)

// Runs of the connector and the baseline alternate in rounds. These
// machines are shared, and their load drifts over a benchmark by more than
// the margin of a1's target: a baseline run in a quiet minute against a
// connector run in a busy one moves the ratio of the two medians by ±0.05.
// The ratio within a round cancels that drift (the order of the workers
// within a round alternates too, see cmd/loadtest), so the throughput target is
// judged on the median of the rounds' ratios, with an interval that says
// how sure that median is.

// PairedRatios returns, round by round, the jobs/s of scenario's num run
// over that of its den run: the i-th num run against the i-th den run, in
// the order they ran. A round missing either run ends the list; a round
// whose den run has no throughput is left out.
func PairedRatios(runs []Result, scenario string, num, den Kind) []float64 {
	var nums, dens []float64
	for _, r := range runs {
		if r.Scenario.Name != scenario {
			continue
		}
		switch r.Kind {
		case num:
			nums = append(nums, r.JobsPerSec)
		case den:
			dens = append(dens, r.JobsPerSec)
		}
	}
	var out []float64
	for i := range min(len(nums), len(dens)) {
		q := nums[i] / dens[i]
		if dens[i] <= 0 || math.IsNaN(q) || math.IsInf(q, 0) {
			continue
		}
		out = append(out, q)
	}
	return out
}

// Interval is the median of a sample and a confidence interval for the
// median of the distribution it was drawn from.
type Interval struct {
	N        int
	Median   float64
	Lo, Hi   float64
	Coverage float64 // the interval's confidence, at least MinCoverage
	Bounded  bool    // false when N is too small for an interval of MinCoverage
}

// MinCoverage is the confidence asked of a median's interval.
const MinCoverage = 0.95

// MedianInterval returns the sample median of xs and the distribution-free
// interval [x₍ₖ₎, x₍ₙ₊₁₋ₖ₎] between order statistics: the true median lies
// below x₍ₖ₎ only if fewer than k of n draws fell below it, which has
// probability P(Bin(n, ½) < k) whatever the distribution. k is the largest
// that keeps both tails within (1 − MinCoverage)/2. It assumes nothing
// about the shape of the noise, which on a shared machine is not normal
// (a busy neighbour gives a long tail).
func MedianInterval(xs []float64) Interval {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	iv := Interval{N: n}
	if n == 0 {
		return iv
	}
	iv.Median = s[n/2]
	if n%2 == 0 {
		iv.Median = (s[n/2-1] + s[n/2]) / 2
	}
	tail := (1 - MinCoverage) / 2
	k := 0
	for cdf := 0.0; ; k++ {
		// cdf = P(Bin(n, ½) ≤ k) after this step.
		cdf += binomialHalf(n, k)
		if cdf > tail+1e-12 {
			break
		}
	}
	// k is the largest count with P(X ≤ k−1) ≤ tail: k order statistics
	// may be cut from each end, and the interval starts at the k-th.
	if k < 1 {
		return iv
	}
	below := 0.0
	for i := range k {
		below += binomialHalf(n, i)
	}
	iv.Lo, iv.Hi = s[k-1], s[n-k]
	iv.Coverage = 1 - 2*below
	iv.Bounded = true
	return iv
}

// binomialHalf is P(X = k) for X ~ Bin(n, ½).
func binomialHalf(n, k int) float64 {
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x + 1)); return v }
	return math.Exp(lg(n) - lg(k) - lg(n-k) - float64(n)*math.Ln2)
}

func (iv Interval) String() string {
	if !iv.Bounded {
		return fmt.Sprintf("%.3f, median of %d rounds (too few for a %.0f %% interval)", iv.Median, iv.N, MinCoverage*100)
	}
	return fmt.Sprintf("%.3f, median of %d rounds (%s)", iv.Median, iv.N, iv.bounds())
}

func (iv Interval) bounds() string {
	return fmt.Sprintf("%.1f %% interval %.2f–%.2f", iv.Coverage*100, iv.Lo, iv.Hi)
}

// minRounds is the fewest rounds on which the throughput target of (a) is
// judged round by round; with fewer, the ratio of the median rows stands.
const minRounds = 3

// judgedRatio is the median of scenario's rounds (connector ÷ baseline),
// or false when there are fewer than minRounds of them.
func judgedRatio(runs []Result, scenario string) (Interval, bool) {
	rounds := PairedRatios(runs, scenario, Connector, Baseline)
	if len(rounds) < minRounds {
		return Interval{}, false
	}
	return MedianInterval(rounds), true
}
