package loadtest

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

// The figures from a made-up run whose answers are known.
func TestMeasure(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	keys := []int64{11, 12, 13, 14}
	polls := []zeebesim.Poll{{MaxJobsToActivate: 2, At: at(0)}, {MaxJobsToActivate: 2, At: at(10)}}
	cmds := []zeebesim.Command{
		{Method: "CompleteJob", JobKey: 11, Result: codes.OK, At: at(5)},
		{Method: "CompleteJob", JobKey: 12, Result: codes.OK, At: at(7)},
		{Method: "CompleteJob", JobKey: 13, Result: codes.NotFound, At: at(15)}, // refused: not a completion
		{Method: "CompleteJob", JobKey: 13, Result: codes.OK, At: at(20)},
		{Method: "CompleteJob", JobKey: 13, Result: codes.OK, At: at(25)}, // the first one counts
		{Method: "FailJob", JobKey: 99, Result: codes.OK, At: at(26)},
		{Method: "CompleteJob", JobKey: 14, Result: codes.OK, At: at(30)},
	}
	once := map[int64]int{11: 1, 12: 1, 13: 1, 14: 1}
	res := Result{CPU: 40 * time.Millisecond}
	measure(&res, keys, polls, cmds, once, t0.Add(-time.Second), 8*time.Millisecond)

	require.True(t, res.ExactActivation)
	require.Equal(t, 4, res.Completed)
	require.Equal(t, 1, res.Failed)
	// Latencies from the poll that took each job: 5, 7, 10, 20 ms.
	require.Equal(t, 10*time.Millisecond, res.P50)
	require.Equal(t, 20*time.Millisecond, res.P99)
	require.Equal(t, 10500*time.Microsecond, res.Mean)
	require.Equal(t, 30*time.Millisecond, res.Wall, "first activation to last completion")
	require.InDelta(t, 4/0.030, res.JobsPerSec, 0.01)
	require.Equal(t, 2*time.Millisecond, res.GraphPerJob)
	require.Equal(t, 8500*time.Microsecond, res.Overhead)
	require.Equal(t, 10*time.Second, res.CPUPer1000)

	// A job activated twice: the polls no longer say when each job was
	// taken, so latencies run from job creation.
	twice := map[int64]int{11: 1, 12: 2, 13: 1, 14: 1}
	res = Result{}
	measure(&res, keys, polls, cmds, twice, at(-100), 0)
	require.False(t, res.ExactActivation)
	// 105, 107, 120 and 130 ms after creation at -100 ms.
	require.Equal(t, 120*time.Millisecond, res.P50)
	require.Equal(t, 130*time.Millisecond, res.P99)
	require.Equal(t, 130*time.Millisecond, res.Wall)
}

// ProcCPU reads what the kernel accounts to the process, as getrusage
// does, not its children's time or wall time.
func TestProcCPUMatchesGetrusage(t *testing.T) {
	usage := func() time.Duration {
		var ru syscall.Rusage
		require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	p0, err := ProcCPU(os.Getpid())
	require.NoError(t, err)
	u0 := usage()
	// Burn about 300 ms of CPU, however long that takes on a busy machine.
	x := 0
	for usage()-u0 < 300*time.Millisecond {
		for i := 0; i < 1e6; i++ {
			x += i
		}
	}
	_ = x
	p1, err := ProcCPU(os.Getpid())
	require.NoError(t, err)
	u1 := usage()
	// /proc counts in clock ticks (10 ms); allow a few on either side.
	require.InDelta(t, (u1 - u0).Seconds(), (p1 - p0).Seconds(), 0.05)
}
