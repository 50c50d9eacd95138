package gctune

import (
	"errors"
	"math"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

func TestMemoryLimitFollowsTheContainer(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	noEnv := func(string) (string, bool) { return "", false }

	debug.SetMemoryLimit(math.MaxInt64)
	got, err := SetMemoryLimit(0.9, memlimit.Limit(128<<20), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	const want = 120795955 // ⌊128 MiB × 0.9⌋
	if got != want || debug.SetMemoryLimit(-1) != want {
		t.Fatalf("limit %d (runtime %d), want %d", got, debug.SetMemoryLimit(-1), want)
	}

	for name, tc := range map[string]struct {
		ratio    float64
		provider memlimit.Provider
		env      func(string) (string, bool)
	}{
		"ratio 0 turns it off": {0, memlimit.Limit(128 << 20), noEnv},
		"no container limit":   {0.9, func() (uint64, error) { return 0, memlimit.ErrNoLimit }, noEnv},
		"GOMEMLIMIT set": {0.9, memlimit.Limit(128 << 20), func(k string) (string, bool) {
			return "100MiB", k == "GOMEMLIMIT"
		}},
	} {
		debug.SetMemoryLimit(math.MaxInt64)
		got, err := SetMemoryLimit(tc.ratio, tc.provider, tc.env)
		if err != nil || got != 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
			t.Errorf("%s: set %d (runtime %d), err %v; want nothing set", name, got, debug.SetMemoryLimit(-1), err)
		}
	}

	// A cgroup that cannot be read is reported, and nothing is set.
	debug.SetMemoryLimit(math.MaxInt64)
	broken := errors.New("cgroup unreadable")
	if _, err := SetMemoryLimit(0.9, func() (uint64, error) { return 0, broken }, noEnv); !errors.Is(err, broken) {
		t.Errorf("error %v, want %v", err, broken)
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("limit %d set from an unreadable cgroup", l)
	}
}
