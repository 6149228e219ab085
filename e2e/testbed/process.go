package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Process is one component the testbed started: its OS pid (also its process group) and
// where its output goes.
type Process struct {
	Name string `json:"name"`
	Pid  int    `json:"pid"`
	Log  string `json:"log"`
	// Start time of the process as the kernel saw it, so a recycled pid is never signalled.
	StartTicks uint64 `json:"startTicks"`

	cmd  *exec.Cmd
	done chan struct{}
}

// startProcess runs bin with args in its own process group, output to logPath. When
// killWithParent is set the kernel kills it if the starting thread dies (used by tests, so an
// interrupted `go test` leaves nothing running); `testbed up` leaves it unset so the planes
// outlive the command.
func startProcess(name, bin string, args []string, logPath string, killWithParent bool) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Stdin = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if killWithParent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Pid: cmd.Process.Pid, Log: logPath, cmd: cmd, done: make(chan struct{})}
	p.StartTicks, _ = processStartTicks(p.Pid)
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether a process this testbed started has ended.
func (p *Process) exited() bool {
	if p.done != nil {
		select {
		case <-p.done:
			return true
		default:
			return false
		}
	}
	return !p.alive()
}

// alive reports whether the recorded pid still runs the process that was started.
func (p *Process) alive() bool {
	if p.Pid <= 0 {
		return false
	}
	ticks, err := processStartTicks(p.Pid)
	if err != nil {
		return false
	}
	if p.StartTicks != 0 && ticks != p.StartTicks {
		return false // pid reused by something else
	}
	state, _ := processState(p.Pid)
	return state != "Z"
}

// stop sends SIGTERM to the process group, waits up to grace, then SIGKILL.
func (p *Process) stop(grace time.Duration) {
	if !p.alive() {
		p.reap()
		return
	}
	_ = syscall.Kill(-p.Pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if p.exited() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	for i := 0; i < 100 && !p.exited(); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	p.reap()
}

func (p *Process) reap() {
	if p.done != nil {
		select {
		case <-p.done:
		case <-time.After(2 * time.Second):
		}
	}
}

// logTail returns the last n lines of the component's log, for failure messages.
func (p *Process) logTail(n int) string {
	return tailFile(p.Log, n)
}

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// processStartTicks reads field 22 (starttime) of /proc/<pid>/stat.
func processStartTicks(pid int) (uint64, error) {
	fields, err := procStatFields(pid)
	if err != nil {
		return 0, err
	}
	if len(fields) < 20 {
		return 0, errors.New("short stat")
	}
	var v uint64
	_, err = fmt.Sscan(fields[19], &v)
	return v, err
}

func processState(pid int) (string, error) {
	fields, err := procStatFields(pid)
	if err != nil || len(fields) < 1 {
		return "", err
	}
	return fields[0], nil
}

// procStatFields returns the fields of /proc/<pid>/stat after the command name.
func procStatFields(pid int) ([]string, error) {
	data, err := os.ReadFile(filepath.Join("/proc", fmt.Sprint(pid), "stat"))
	if err != nil {
		return nil, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, errors.New("malformed stat")
	}
	return strings.Fields(s[i+1:]), nil
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls check until it returns nil, the process dies, or ctx ends. The error names the
// component and carries the tail of its log.
func waitFor(ctx context.Context, p *Process, what string, check func(context.Context) error) error {
	var last error
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited while waiting for %s (last check: %v); log tail:\n%s",
				p.Name, what, last, p.logTail(30))
		}
		select {
		case <-ctx.Done():
			tail := ""
			if p != nil {
				tail = "; log tail of " + p.Name + ":\n" + p.logTail(30)
			}
			return fmt.Errorf("timed out waiting for %s (last check: %v)%s", what, last, tail)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
