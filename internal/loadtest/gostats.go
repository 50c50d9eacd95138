package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// GoStats are a worker's cumulative Go runtime counters, read from its
// Prometheus endpoint: unlike CPU time they do not depend on what else the
// machine is doing, so they tell what a change did even on a noisy run.
type GoStats struct {
	AllocBytes float64 // go_memstats_alloc_bytes_total
	GCs        float64 // go_gc_duration_seconds_count
}

// freeAddr returns a loopback address with a port free at the time.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// ScrapeGoStats reads the counters from http://addr/metrics.
func ScrapeGoStats(ctx context.Context, addr string) (GoStats, error) {
	var s GoStats
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return s, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var dst *float64
		switch name {
		case "go_memstats_alloc_bytes_total":
			dst = &s.AllocBytes
		case "go_gc_duration_seconds_count":
			dst = &s.GCs
		default:
			continue
		}
		if *dst, err = strconv.ParseFloat(value, 64); err != nil {
			return s, fmt.Errorf("%s: %w", name, err)
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	if found != 2 {
		return s, fmt.Errorf("/metrics lacks go_memstats_alloc_bytes_total or go_gc_duration_seconds_count")
	}
	return s, nil
}
