// Package proc runs and observes the processes a benchmark measures: start one with its log in
// a file, stop it, read its CPU time and peak RSS from /proc, wait for it to be ready, and sum
// up the warnings and errors of its log.
package proc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is an OS process a benchmark measures: one the driver started, or one it only
// observes (the testbed's kwok).
type Process struct {
	Pid  int
	Log  string // "" when the driver did not start it
	cmd  *exec.Cmd
	done chan struct{}
	err  error // exit status, valid once done is closed
}

// Observe is a process the driver did not start: it is read, never stopped.
func Observe(pid int) *Process { return &Process{Pid: pid} }

// Start runs bin with its output in logPath. Pdeathsig ties it to the driver, so an
// interrupted benchmark leaves nothing running.
func Start(bin string, args, env []string, logPath string) (*Process, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	p := &Process{Pid: cmd.Process.Pid, cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// Exited reports whether a process the driver started has ended (never for observed ones).
func (p *Process) Exited() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the exit status of a process that has exited.
func (p *Process) Err() error { return p.err }

// Stop sends SIGTERM, waits up to 30 s, then kills. Observed processes are left alone.
func (p *Process) Stop() {
	if p.cmd == nil || p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat; 100 on every Linux
// architecture Go supports (sysconf(_SC_CLK_TCK) would need cgo).
const clockTicks = 100

// CPUSeconds returns the user+system CPU time the process has used so far.
func (p *Process) CPUSeconds() (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid))
	if err != nil {
		return 0, err
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", p.Pid)
	}
	var utime, stime float64
	fmt.Sscan(fields[11], &utime) // field 14 of stat; fields here start at field 3
	fmt.Sscan(fields[12], &stime)
	return (utime + stime) / clockTicks, nil
}

// PeakRSSMB reads VmHWM, the largest resident set the process has had.
func (p *Process) PeakRSSMB() (float64, error) { return StatusMB(p.Pid, "VmHWM") }

// StatusMB reads a kB field of /proc/<pid>/status (VmRSS, VmHWM, ...) in MB.
func StatusMB(pid int, field string) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(rest), "%f", &kb)
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// ResetPeakRSS sets VmHWM back to the current RSS (clear_refs 5), so that the peak of a
// long-running process we did not start covers only the run being measured.
func (p *Process) ResetPeakRSS() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.Pid), []byte("5"), 0o200)
}

// Settle waits until the process uses less than 5% of a core over a second (at most max), so
// that work trailing the last Running pod (events, status retries) counts in its CPU time.
func (p *Process) Settle(max time.Duration) {
	prev, err := p.CPUSeconds()
	for deadline := time.Now().Add(max); err == nil && time.Now().Before(deadline); {
		time.Sleep(time.Second)
		var now float64
		if now, err = p.CPUSeconds(); err == nil && now-prev < 0.05 {
			return
		}
		prev = now
	}
}

// WaitUntil polls check every 200 ms until it succeeds, the process exits or timeout passes.
func WaitUntil(ctx context.Context, p *Process, timeout time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("process exited (%v) while waiting for %s; log %s:\n%s", p.err, what, p.Log, Tail(p.Log))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("timed out waiting for %s: %v; log %s:\n%s", what, err, p.Log, Tail(p.Log))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Tail returns the last lines of a process's log, for errors.
func Tail(path string) string {
	if path == "" {
		return "(not ours)"
	}
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// LogProblems counts the lines at level warn and error in the first size bytes of a log
// (what was written before the driver stopped the process) and returns the most frequent
// messages, errors first. burstlet (spdlog) and upstream (logrus) both write `level=<name>`
// and `msg=`.
func LogProblems(path string, size int64) (warns, errs int, top []string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, nil
	}
	data = data[:min(int64(len(data)), size)]
	count := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		level := ""
		switch {
		case strings.Contains(line, "level=warn"):
			warns++
			level = "warn"
		case strings.Contains(line, "level=error"), strings.Contains(line, "level=fatal"):
			errs++
			level = "error"
		default:
			continue
		}
		// The message and its error, with digits blanked so that the same message about
		// different pods counts as one.
		msg := level + " " + field(line, "msg")
		if e := field(line, "error"); e != "" {
			msg += ": " + e
		}
		msg = strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return '#'
			}
			return r
		}, msg)
		count[msg]++
	}
	for m := range count {
		top = append(top, m)
	}
	sort.Slice(top, func(i, j int) bool {
		ei, ej := strings.HasPrefix(top[i], "error"), strings.HasPrefix(top[j], "error")
		if ei != ej {
			return ei
		}
		if count[top[i]] != count[top[j]] {
			return count[top[i]] > count[top[j]]
		}
		return top[i] < top[j]
	})
	top = top[:min(len(top), 3)]
	for i, m := range top {
		if len(m) > 220 {
			m = m[:220] + "..."
		}
		top[i] = fmt.Sprintf("%dx %s", count[top[i]], m)
	}
	return warns, errs, top
}

// field returns the value of key=value or key="value" in a log line.
func field(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	rest := line[i+len(key)+2:]
	if strings.HasPrefix(rest, `"`) {
		if v, err := strconv.QuotedPrefix(rest); err == nil {
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
		}
		return strings.Trim(rest, `"`)
	}
	if j := strings.IndexByte(rest, ' '); j >= 0 {
		return rest[:j]
	}
	return rest
}

// LogSize is how much of the log has been written so far.
func LogSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// FreeAddr returns a loopback address with a port nobody listens on.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
