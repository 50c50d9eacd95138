package mapping

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Only day-time durations make sense as a retry backoff; years and months are
// refused rather than guessed.
// Like java.time.Duration.parse, which Camunda's runtime uses, letters may be
// in either case and the seconds' fraction may follow a comma.
var isoDuration = regexp.MustCompile(`(?i)^(-)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:[.,]\d+)?)S)?)?$`)

// ParseISODuration reads ISO-8601 day-time durations such as PT30S, PT1M30S,
// P1DT2H, PT0.5S.
func ParseISODuration(s string) (time.Duration, error) {
	m := isoDuration.FindStringSubmatch(s)
	// The pattern lets every part be absent; at least one must be there,
	// and a T must be followed by one.
	if m == nil || m[2]+m[3]+m[4]+m[5] == "" || s[len(s)-1]|0x20 == 't' {
		return 0, fmt.Errorf("expected an ISO-8601 duration such as PT30S or PT5M, got %q", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
		if m[i+2] != "" {
			n, err := strconv.ParseInt(m[i+2], 10, 32)
			if err != nil || time.Duration(n) > (math.MaxInt64-d)/unit {
				return 0, fmt.Errorf("duration %q is out of range", s)
			}
			d += time.Duration(n) * unit
		}
	}
	if m[5] != "" {
		f, _ := strconv.ParseFloat(strings.Replace(m[5], ",", ".", 1), 64)
		if f > 1e9 || f*float64(time.Second) > float64(math.MaxInt64-d) {
			return 0, fmt.Errorf("duration %q is out of range", s)
		}
		d += time.Duration(f * float64(time.Second))
	}
	if m[1] == "-" {
		return 0, fmt.Errorf("expected a non-negative duration, got %q", s)
	}
	return d, nil
}
