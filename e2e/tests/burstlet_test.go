package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"burstlet/e2e/testbed"
)

// daemon is one `burstlet run` process serving a virtual node of its own on the cluster plane.
type daemon struct {
	t    *testing.T
	node string
	args []string
	// nodeIP is the address the node reports (--node-ip): the test bed's node address, which
	// the API servers proxy to (nodes/<n>/proxy, and logs, exec, ... of its pods).
	nodeIP string
	// kubeletPort is the port of its kubelet API (--kubelet-port), which listens on nodeIP.
	kubeletPort int
	health      string
	logs        string
	cmd         *exec.Cmd
	done        chan error
	// exec runs burstlet (default: $BURSTLET); image_test.go runs the image's binary in a chroot.
	exec []string
	// env is the process's whole environment when set (default: the test's).
	env []string
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startDaemon runs burstlet for a node named after the test, with the fake provider, and
// waits until /readyz answers 200. It is stopped and its Node deleted when the test ends.
func startDaemon(t *testing.T, extra ...string) *daemon {
	t.Helper()
	d := newDaemon(t, extra...)
	d.waitReady(60 * time.Second)
	return d
}

// newDaemon is startDaemon without waiting for /readyz.
func newDaemon(t *testing.T, extra ...string) *daemon {
	t.Helper()
	bin := os.Getenv("BURSTLET")
	if bin == "" {
		t.Fatal("BURSTLET is not set (make e2e sets it to the release build of burstlet)")
	}
	return newDaemonRunning(t, []string{bin}, env.tb.Cluster.BurstletKubeconfig, env.tb.Cluster.CAFile, extra...)
}

// newDaemonRunning starts burstlet with the command `exec` (the binary and what precedes its
// arguments), the cluster kubeconfig and CA file at the paths that command sees.
func newDaemonRunning(t *testing.T, exec []string, kubeconfig, caFile string, extra ...string) *daemon {
	t.Helper()
	node := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(node) > 40 {
		node = node[:40]
	}
	node = fmt.Sprintf("vk-%s-%d", strings.Trim(node, "-"), time.Now().UnixNano()%100000)
	d := &daemon{t: t, node: node, logs: filepath.Join(t.TempDir(), "burstlet.log"), exec: exec}
	d.health = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d.nodeIP = env.tb.NodeIP()
	var err error
	if d.kubeletPort, err = testbed.FreePort(d.nodeIP); err != nil {
		t.Fatalf("a free kubelet port on the node address %s: %v", d.nodeIP, err)
	}
	d.args = append([]string{"run", "--kubeconfig", kubeconfig,
		"--node-name", node, "--node-ip", d.nodeIP, "--kubelet-port", fmt.Sprint(d.kubeletPort),
		"--health-listen", d.health,
		// The API server's kubelet client certificate is signed by the cluster CA.
		"--kubelet-client-ca-file", caFile}, extra...)
	d.start()
	t.Cleanup(func() {
		d.stop(syscall.SIGTERM)
		if t.Failed() {
			d.printLogs()
		}
		_ = env.cluster.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{})
	})
	return d
}

func (d *daemon) start() {
	d.t.Helper()
	out, err := os.OpenFile(d.logs, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	d.cmd = exec.Command(d.exec[0], append(append([]string(nil), d.exec[1:]...), d.args...)...)
	d.cmd.Stdout, d.cmd.Stderr = out, out
	d.cmd.Env = d.env
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("start burstlet: %v", err)
	}
	d.done = make(chan error, 1)
	go func() { d.done <- d.cmd.Wait(); out.Close() }()
}

// kubeletAddr is host:port of the daemon's kubelet API.
func (d *daemon) kubeletAddr() string {
	return net.JoinHostPort(d.nodeIP, fmt.Sprint(d.kubeletPort))
}

// stop signals the process and waits for it; it returns the exit error (nil for exit 0).
func (d *daemon) stop(sig syscall.Signal) error {
	if d.cmd == nil {
		return nil
	}
	_ = d.cmd.Process.Signal(sig)
	select {
	case err := <-d.done:
		d.cmd = nil
		return err
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		select {
		case <-d.done:
		case <-time.After(5 * time.Second):
		}
		d.cmd = nil
		return fmt.Errorf("burstlet did not exit within 30s of %v", sig)
	}
}

func (d *daemon) waitReady(timeout time.Duration) {
	d.t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	eventually(d.t, timeout, "burstlet /readyz", func() error {
		select {
		case err := <-d.done:
			d.cmd = nil
			d.t.Fatalf("burstlet exited early: %v", err)
		default:
		}
		resp, err := client.Get("http://" + d.health + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	})
}

// running says whether the process has not exited yet.
func (d *daemon) running() bool {
	if d.cmd == nil {
		return false
	}
	select {
	case err := <-d.done:
		d.done <- err
		return false
	default:
		return true
	}
}

// waitExit waits up to timeout for the process to exit by itself and returns its exit error
// (nil for exit 0); the test fails when it keeps running.
func (d *daemon) waitExit(timeout time.Duration) error {
	d.t.Helper()
	select {
	case err := <-d.done:
		d.cmd = nil
		return err
	case <-time.After(timeout):
		d.t.Fatalf("burstlet still runs %v after start, want it to exit", timeout)
		return nil
	}
}

// readyz returns /readyz's status code and body (0 and the error text when it does not answer).
func (d *daemon) readyz() (int, string) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + d.health + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// output is everything the process wrote so far.
func (d *daemon) output() string {
	data, _ := os.ReadFile(d.logs)
	return string(data)
}

// consistently checks for the whole duration that check keeps returning nil, failing the test at
// the first error.
func consistently(t *testing.T, duration time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(duration)
	for time.Now().Before(deadline) {
		if err := check(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (d *daemon) printLogs() {
	data, _ := os.ReadFile(d.logs)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	d.t.Logf("burstlet log (%s), last lines:\n%s", d.logs, strings.Join(lines, "\n"))
}

// journalPods reads the fake provider's state file: the live pods by namespace/name -> UID.
func journalPods(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	live := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e struct {
			Op  string `json:"op"`
			Key string `json:"key"`
			UID string `json:"uid"`
			Pod struct {
				Metadata struct {
					Namespace, Name, UID string
				} `json:"metadata"`
			} `json:"pod"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue // a line cut by a kill
		}
		switch e.Op {
		case "create":
			live[e.Pod.Metadata.Namespace+"/"+e.Pod.Metadata.Name] = e.Pod.Metadata.UID
		case "delete":
			if live[e.Key] == e.UID {
				delete(live, e.Key)
			}
		}
	}
	return live
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
