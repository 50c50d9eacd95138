package loadtest

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPairedRatiosPairRoundByRound(t *testing.T) {
	a1 := Scenarios(100, 100, 100)[0]
	a100 := Scenarios(100, 100, 100)[1]
	run := func(sc Scenario, k Kind, jps float64) Result { return Result{Scenario: sc, Kind: k, JobsPerSec: jps} }
	runs := []Result{
		run(a1, Connector, 900), run(a1, Baseline, 1000), run(a1, LimitedBaseline, 950),
		run(a100, Connector, 1), run(a100, Baseline, 4),
		run(a1, Connector, 600), run(a1, Baseline, 800), run(a1, LimitedBaseline, 700),
		run(a1, Connector, 500), // a round cut short: no baseline run
	}
	require.Equal(t, []float64{0.9, 0.75}, PairedRatios(runs, "a1", Connector, Baseline))
	require.Equal(t, []float64{0.25}, PairedRatios(runs, "a100", Connector, Baseline))
	require.InDeltaSlice(t, []float64{900.0 / 950, 600.0 / 700}, PairedRatios(runs, "a1", Connector, LimitedBaseline), 1e-12)
	require.Empty(t, PairedRatios(runs, "b", Connector, Baseline))
	// A round without a baseline figure is left out; later rounds count.
	gap := []Result{run(a1, Connector, 900), run(a1, Baseline, 0), run(a1, Connector, 800), run(a1, Baseline, 1000)}
	require.Equal(t, []float64{0.8}, PairedRatios(gap, "a1", Connector, Baseline))
}

func TestMedianIntervalOrderStatistics(t *testing.T) {
	// 9 draws: two order statistics may go from each end, since
	// P(Bin(9, ½) ≤ 1) = 10/512 ≤ 2.5 % < P(Bin(9, ½) ≤ 2) = 46/512.
	iv := MedianInterval([]float64{9, 1, 8, 2, 7, 3, 6, 4, 5})
	require.True(t, iv.Bounded)
	require.InDelta(t, 1-2*10.0/512, iv.Coverage, 1e-9)
	iv.Coverage = 0
	require.Equal(t, Interval{N: 9, Median: 5, Lo: 2, Hi: 8, Bounded: true}, iv)
	require.Equal(t, "5.000, median of 9 rounds (96.1 % interval 2.00–8.00)", MedianInterval([]float64{9, 1, 8, 2, 7, 3, 6, 4, 5}).String())

	// 6 is the smallest sample with a 95 % interval: its extremes.
	iv = MedianInterval([]float64{3, 1, 2, 6, 5, 4})
	require.InDelta(t, 1-2.0/64, iv.Coverage, 1e-9)
	iv.Coverage = 0
	require.Equal(t, Interval{N: 6, Median: 3.5, Lo: 1, Hi: 6, Bounded: true}, iv)

	iv = MedianInterval([]float64{0.9, 0.8, 0.85, 0.7, 0.95})
	require.False(t, iv.Bounded, "5 draws: P(all above the median) = 1/32 > 2.5 %")
	require.Equal(t, 0.85, iv.Median)
	require.Equal(t, "0.850, median of 5 rounds (too few for a 95 % interval)", iv.String())

	require.Equal(t, Interval{}, MedianInterval(nil))
}

// The interval holds what it claims on noise like this machine's, skewed
// with a long tail: over many samples of 9 from a distribution whose median
// is known, the share of intervals that contain it is the stated coverage.
// An interval one order statistic too narrow would cover 82 %.
func TestMedianIntervalCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	const trials = 20000
	median := math.Ln2 // of the exponential distribution with rate 1
	covered := 0
	var claimed float64
	xs := make([]float64, 9)
	for range trials {
		for i := range xs {
			xs[i] = rng.ExpFloat64()
		}
		iv := MedianInterval(xs)
		claimed = iv.Coverage
		if iv.Lo <= median && median <= iv.Hi {
			covered++
		}
	}
	got := float64(covered) / trials
	// Four standard deviations of a share of 20,000 either side.
	require.InDelta(t, claimed, got, 4*math.Sqrt(claimed*(1-claimed)/trials), "claimed %.4f, covered %.4f", claimed, got)
	require.GreaterOrEqual(t, claimed, MinCoverage)
}

// The throughput target in (a) is judged on the rounds' ratios: here the
// machine got busier after the first round, and the ratio of the two
// medians, taken from different rounds, would miss a target that every
// round but one meets.
func TestThroughputTargetIsJudgedRoundByRound(t *testing.T) {
	a1 := Scenarios(100, 100, 100)[0]
	run := func(k Kind, jps float64) Result {
		return Result{Scenario: a1, Kind: k, Completed: 100, JobsPerSec: jps, RSSIdle: 20 << 20, TokenRequests: 1, ExactActivation: true}
	}
	runs := []Result{
		run(Connector, 900), run(Baseline, 1000), run(LimitedBaseline, 950),
		run(Connector, 600), run(Baseline, 700), run(LimitedBaseline, 650),
		run(Connector, 700), run(Baseline, 850), run(LimitedBaseline, 800),
	}
	res := []Result{Median(runs, Connector), Median(runs, Baseline), Median(runs, LimitedBaseline)}
	require.Equal(t, 700.0, res[0].JobsPerSec)
	require.Equal(t, 850.0, res[1].JobsPerSec)

	missed := Missed(Checks(res, nil))
	require.Len(t, missed, 1, "the medians alone: 700/850 = 0.82")

	checks := Checks(res, runs)
	require.Empty(t, Missed(checks), "rounds 0.90, 0.86, 0.82: median 0.86")
	require.Equal(t, "0.857, median of 3 rounds (too few for a 95 % interval) (0.82 from the medians, 700 vs 850 jobs/s; 0.88 × the limited baseline's 800)", checks[0].Got)
	var buf bytes.Buffer
	Table(&buf, res, runs)
	require.Contains(t, buf.String(), "| connector | 100 | 700 | 0.857 × baseline (median of 3 rounds) |", "the table shows the judged figure")

	// And the other way: the medians can meet the target when one round
	// does and the other two do not.
	runs = []Result{
		run(Connector, 1000), run(Baseline, 1200), run(LimitedBaseline, 1100),
		run(Connector, 800), run(Baseline, 940), run(LimitedBaseline, 850),
		run(Connector, 700), run(Baseline, 850), run(LimitedBaseline, 750),
	}
	res = []Result{Median(runs, Connector), Median(runs, Baseline), Median(runs, LimitedBaseline)}
	require.Empty(t, Missed(Checks(res, nil)), "the medians alone: 800/940 = 0.851")
	missed = Missed(Checks(res, runs))
	require.Len(t, missed, 1, "rounds 0.83, 0.85, 0.82: median 0.83")
	require.Contains(t, missed[0], "got 0.833, median of 3 rounds")
}
