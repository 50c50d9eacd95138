package gctune

import (
	"errors"
	"math"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// SetMemoryLimit sets Go's soft memory limit to ratio × the memory limit
// that provider reports (the container's, from its cgroup), so that the
// collector works harder as the heap nears it instead of the kernel
// killing the process. Go does not read the cgroup limit itself. It
// returns the limit set, 0 when none was: ratio 0, no container limit, or
// GOMEMLIMIT set by the operator (which the runtime has already applied).
func SetMemoryLimit(ratio float64, provider memlimit.Provider, lookupEnv func(string) (string, bool)) (int64, error) {
	if ratio <= 0 {
		return 0, nil
	}
	if _, set := lookupEnv("GOMEMLIMIT"); set {
		return 0, nil
	}
	limit, err := memlimit.ApplyRatio(provider, ratio)()
	if errors.Is(err, memlimit.ErrNoLimit) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if limit == 0 || limit > math.MaxInt64 {
		return 0, nil
	}
	debug.SetMemoryLimit(int64(limit))
	return int64(limit), nil
}
