package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat; it
// is 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// Proc is a worker running as a child process.
type Proc struct {
	cmd    *exec.Cmd
	out    *capWriter
	done   chan struct{}
	exitMu sync.Mutex
	exit   error
}

// capWriter keeps the first bytes of the child's output for error reports.
type capWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (w *capWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (w *capWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// StartProc starts path with args and exactly env (nothing is inherited, so
// that the operator's CONNECTOR_* settings cannot leak into a measurement).
func StartProc(path string, args, env []string) (*Proc, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = env
	out := &capWriter{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.exitMu.Lock()
		p.exit = err
		p.exitMu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output is the beginning of the child's stdout and stderr.
func (p *Proc) Output() string { return p.out.String() }

// Exited reports whether the child has ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		p.exitMu.Lock()
		defer p.exitMu.Unlock()
		return true, p.exit
	default:
		return false, nil
	}
}

// Done is closed when the child has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Signal sends sig to the child.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop sends SIGTERM, waits up to grace and kills the child after that. It
// returns the exit error, or an error saying it had to be killed.
func (p *Proc) Stop(grace time.Duration) error {
	if ended, err := p.Exited(); ended {
		return err
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		_, err := p.Exited()
		return err
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("pid %d did not exit within %s of SIGTERM and was killed", p.Pid(), grace)
}

// CPU is the child's user plus system CPU time so far.
func (p *Proc) CPU() (time.Duration, error) { return ProcCPU(p.Pid()) }

// Mem returns the child's resident set size and its peak (VmRSS, VmHWM).
func (p *Proc) Mem() (rss, peak int64, err error) { return ProcMem(p.Pid()) }

// ProcCPU reads utime+stime of pid from /proc/<pid>/stat.
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces and parentheses; the
	// fields after its closing parenthesis are fixed.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("loadtest: unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("loadtest: short /proc stat line")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("loadtest: bad utime/stime in /proc stat")
	}
	return time.Duration(ut+st) * clockTick, nil
}

// ProcMem reads VmRSS and VmHWM of pid, in bytes.
func ProcMem(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) < 1 {
			continue
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("loadtest: bad %s in /proc status: %q", name, val)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	if rss == 0 {
		return 0, 0, errors.New("loadtest: no VmRSS in /proc status")
	}
	return rss, peak, nil
}
