package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat. Linux fixes it at
// 100 for user space on every architecture Go supports (sysconf would need cgo), so CPU
// figures have 10 ms resolution per process: noise well under 1% over a run of seconds.
const clockTick = 10 * time.Millisecond

// ErrNoProc: the process's CPU time cannot be read (not Linux, or the process is gone).
var ErrNoProc = errors.New("loadgen: no /proc CPU time")

// ProcessCPU returns the CPU time (user + system, all threads) process pid has used so far,
// from /proc/<pid>/stat; pid 0 is this process.
func ProcessCPU(pid int) (time.Duration, error) {
	path := "/proc/self/stat"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNoProc, err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a /proc/<pid>/stat line. The
// command name (field 2) may contain spaces and parentheses, so fields are counted from the
// last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: malformed stat line", ErrNoProc)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: stat line has %d fields after the name", ErrNoProc, len(f))
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 63)
	st, err2 := strconv.ParseUint(string(f[12]), 10, 63)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%w: utime %q stime %q", ErrNoProc, f[11], f[12])
	}
	return time.Duration(ut+st) * clockTick, nil
}

// cpuSampler takes CPU readings of named processes at the start and the end of the window.
type cpuSampler struct {
	pids  map[string]int
	start map[string]time.Duration
	used  map[string]time.Duration
	errs  map[string]error
}

func newCPUSampler(pids map[string]int) *cpuSampler {
	return &cpuSampler{pids: pids, start: map[string]time.Duration{}, used: map[string]time.Duration{}, errs: map[string]error{}}
}

func (s *cpuSampler) begin() {
	for name, pid := range s.pids {
		v, err := ProcessCPU(pid)
		if err != nil {
			s.errs[name] = err
			continue
		}
		s.start[name] = v
	}
}

func (s *cpuSampler) finish() {
	for name, pid := range s.pids {
		if _, failed := s.errs[name]; failed {
			continue
		}
		v, err := ProcessCPU(pid)
		if err != nil {
			s.errs[name] = err
			continue
		}
		s.used[name] = v - s.start[name]
	}
}
