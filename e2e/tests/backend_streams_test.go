package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"

	"burstlet/e2e/testbed"
)

// syncBuffer is a bytes.Buffer safe for a stream's writer and the test's reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// backendStreamPod creates a pod on the backend fleet (kwok) and waits until it runs.
func backendStreamPod(t *testing.T) (ns, name string) {
	t.Helper()
	ns, name = plainNamespace(t), "streams"
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "streams"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
	}
	if _, err := env.backend.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	runningPods(t, env.backend, ns, "app=streams", 1, "cci-fleet-", "10.245.")
	return ns, name
}

func backendRESTConfig(t *testing.T) *rest.Config {
	t.Helper()
	cfg, err := env.tb.Backend.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The backend plane's kwok serves the logs, exec, attach and port-forward of its pods
// (testbed.PodStreams) through the API server, as a kubelet would, over every protocol a
// client or burstlet's kubelet API may use.
func TestBackendPodStreams(t *testing.T) {
	st := env.tb.Backend.Streams
	if st == nil {
		t.Fatal("the backend plane has no pod streams (testbed.PodStreams)")
	}
	ns, pod := backendStreamPod(t)
	cfg := backendRESTConfig(t)
	t.Run("logs", func(t *testing.T) { backendLogs(t, st, ns, pod) })
	t.Run("exec", func(t *testing.T) { backendExec(t, st, cfg, ns, pod) })
	t.Run("attach", func(t *testing.T) { backendAttach(t, st, cfg, ns, pod) })
	t.Run("portforward", func(t *testing.T) { backendPortForward(t, st, cfg, ns, pod) })
}

func backendLogs(t *testing.T, st *testbed.PodStreams, ns, pod string) {
	ctx := context.Background()
	pods := env.backend.CoreV1().Pods(ns)
	read := func(opts *corev1.PodLogOptions) string {
		t.Helper()
		data, err := pods.GetLogs(pod, opts).DoRaw(ctx)
		if err != nil {
			t.Fatalf("logs %+v: %v", opts, err)
		}
		return string(data)
	}
	mark := fmt.Sprintf("log-%d", time.Now().UnixNano())
	old := time.Now().Add(-time.Hour)
	if err := testbed.AppendLogAt(st.LogFile, old, "stdout", mark+" old"); err != nil {
		t.Fatal(err)
	}
	if err := testbed.AppendLog(st.LogFile, "stdout", mark+" one", mark+" two"); err != nil {
		t.Fatal(err)
	}
	if err := testbed.AppendLog(st.LogFile, "stderr", mark+" three"); err != nil {
		t.Fatal(err)
	}
	if got := read(&corev1.PodLogOptions{Container: "app"}); !strings.HasSuffix(got,
		mark+" old\n"+mark+" one\n"+mark+" two\n"+mark+" three\n") {
		t.Errorf("whole log ends %q", lastLines(got, 4))
	}
	two := int64(2)
	if got := read(&corev1.PodLogOptions{TailLines: &two}); got != mark+" two\n"+mark+" three\n" {
		t.Errorf("tailLines=2: %q", got)
	}
	since := metav1.NewTime(time.Now().Add(-time.Minute))
	if got := read(&corev1.PodLogOptions{SinceTime: &since}); strings.Contains(got, mark+" old") ||
		!strings.Contains(got, mark+" one\n") {
		t.Errorf("sinceTime a minute ago: %q", lastLines(got, 4))
	}
	sinceSeconds := int64(60)
	if got := read(&corev1.PodLogOptions{SinceSeconds: &sinceSeconds}); strings.Contains(got, mark+" old") {
		t.Errorf("sinceSeconds=60 has the line of an hour ago: %q", lastLines(got, 4))
	}
	if got := read(&corev1.PodLogOptions{TailLines: &two, Timestamps: true}); !strings.HasSuffix(got,
		"Z "+mark+" three\n") || !strings.HasPrefix(got, time.Now().UTC().Format("2006-01-02T")) {
		t.Errorf("timestamps: %q", got)
	}
	limit := int64(5)
	if got := read(&corev1.PodLogOptions{TailLines: &two, LimitBytes: &limit}); got != mark[:5] {
		t.Errorf("limitBytes=5: %q", got)
	}
	if err := testbed.AppendLog(st.PreviousLogFile, "stdout", mark+" before the restart"); err != nil {
		t.Fatal(err)
	}
	if got := read(&corev1.PodLogOptions{Previous: true}); !strings.HasSuffix(got, mark+" before the restart\n") {
		t.Errorf("previous: %q", lastLines(got, 2))
	}

	// Follow: lines appended later arrive on the open stream. The answer starts with the first
	// line (kwok sends no header before): the last one here.
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	one := int64(1)
	stream, err := pods.GetLogs(pod, &corev1.PodLogOptions{Follow: true, TailLines: &one}).Stream(fctx)
	if err != nil {
		t.Fatalf("follow: %v", err)
	}
	defer stream.Close()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stream)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if got := <-lines; got != mark+" three" && got != mark+" two" {
		t.Fatalf("follow starts with %q", got)
	}
	for i := 0; i < 3; i++ {
		want := fmt.Sprintf("%s followed %d", mark, i)
		if err := testbed.AppendLog(st.LogFile, "stdout", want); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-lines:
			if got != want {
				t.Fatalf("follow got %q, want %q", got, want)
			}
		case <-fctx.Done():
			t.Fatalf("follow: %q never arrived", want)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func execURL(cs kubernetes.Interface, ns, pod string, opts *corev1.PodExecOptions) *url.URL {
	return cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).
		SubResource("exec").VersionedParams(opts, scheme.ParameterCodec).URL()
}

func attachURL(cs kubernetes.Interface, ns, pod string, opts *corev1.PodAttachOptions) *url.URL {
	return cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).
		SubResource("attach").VersionedParams(opts, scheme.ParameterCodec).URL()
}

// runExec runs the exec at u with ex: its stdout, stderr (none with a TTY) and how it ended.
func runExec(ctx context.Context, t *testing.T, ex executor, cfg *rest.Config, u *url.URL, tty bool,
	stdin io.Reader) (string, string, error) {
	t.Helper()
	e, err := ex.make(cfg, u)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	so := remotecommand.StreamOptions{Stdout: &stdout, Tty: tty}
	if !tty {
		so.Stderr = &stderr
	}
	if stdin != nil {
		so.Stdin = stdin
	}
	err = e.StreamWithContext(ctx, so)
	return stdout.String(), stderr.String(), err
}

func portForwardURL(ns, pod string) *url.URL {
	return env.backend.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).
		SubResource("portforward").URL()
}

type executor struct {
	name string
	make func(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error)
}

var executors = []executor{
	{"websocket", func(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error) {
		return remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
	}},
	{"spdy", func(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error) {
		return remotecommand.NewSPDYExecutor(cfg, "POST", u)
	}},
}

// exitCode is the code of a command that ended with one, else -1.
func exitCode(err error) int {
	var exit utilexec.CodeExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	return -1
}

func backendExec(t *testing.T, st *testbed.PodStreams, cfg *rest.Config, ns, pod string) {
	for _, ex := range executors {
		t.Run(ex.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			run := func(opts *corev1.PodExecOptions, stdin io.Reader) (string, string, error) {
				t.Helper()
				return runExec(ctx, t, ex, cfg, execURL(env.backend, ns, pod, opts), opts.TTY, stdin)
			}
			// A real command on this machine: output on both streams, the exit code, the
			// testbed's working directory and environment.
			out, errOut, err := run(&corev1.PodExecOptions{Container: "app", Stdout: true, Stderr: true,
				Command: []string{"sh", "-c", "echo hi; echo oops >&2; echo $" + testbed.ExecEnv + " $" +
					testbed.ExecPodNamespaceEnv + " $" + testbed.ExecPodNameEnv + " $" + testbed.ExecContainerEnv +
					"; pwd; exit 3"}}, nil)
			if exitCode(err) != 3 {
				t.Errorf("exit: %v (%T), want code 3", err, err)
			}
			if want := fmt.Sprintf("hi\nbackend %s %s app\n%s\n", ns, pod, st.ExecDir); out != want || errOut != "oops\n" {
				t.Errorf("stdout %q stderr %q, want %q and oops", out, errOut, want)
			}
			out, _, err = run(&corev1.PodExecOptions{Container: "app", Stdout: true, Stderr: true,
				Command: []string{"true"}}, nil)
			if err != nil || out != "" {
				t.Errorf("true: %v %q", err, out)
			}
			// Stdin reaches the command, and ends when the client's does.
			out, _, err = run(&corev1.PodExecOptions{Container: "app", Stdin: true, Stdout: true, Stderr: true,
				Command: []string{"sh", "-c", "tr a-z A-Z; exit 4"}}, strings.NewReader("hello\nworld\n"))
			if exitCode(err) != 4 || out != "HELLO\nWORLD\n" {
				t.Errorf("stdin: %v %q", err, out)
			}
			// A TTY: the command sees a terminal, output comes on stdout with CRLF; with or
			// without stdin.
			out, _, err = run(&corev1.PodExecOptions{Container: "app", Stdout: true, TTY: true,
				Command: []string{"sh", "-c", "test -t 1 && echo tty"}}, nil)
			if err != nil || out != "tty\r\n" {
				t.Errorf("tty: %v %q", err, out)
			}
			out, _, err = run(&corev1.PodExecOptions{Container: "app", Stdin: true, Stdout: true, TTY: true,
				Command: []string{"sh", "-c", "read line; echo got:$line; exit 5"}}, strings.NewReader("typed\n"))
			if exitCode(err) != 5 || !strings.HasSuffix(out, "got:typed\r\n") {
				t.Errorf("tty with stdin: %v %q", err, out)
			}
		})
	}
}

func backendAttach(t *testing.T, st *testbed.PodStreams, cfg *rest.Config, ns, pod string) {
	for _, ex := range executors {
		t.Run(ex.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			e, err := ex.make(cfg, attachURL(env.backend, ns, pod, &corev1.PodAttachOptions{Container: "app", Stdout: true,
				Stderr: true}))
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr syncBuffer
			done := make(chan error, 1)
			go func() {
				done <- e.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
			}()
			// Attach streams what is written after it starts: write until a line shows.
			mark := fmt.Sprintf("attach-%s-%d", ex.name, time.Now().UnixNano())
			eventually(t, 20*time.Second, "an attached line", func() error {
				select {
				case err := <-done:
					t.Fatalf("attach ended: %v", err)
				default:
				}
				if err := testbed.AppendLog(st.AttachFile, "stdout", mark); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(stdout.String(), mark+"\n") {
					return fmt.Errorf("stdout %q", stdout.String())
				}
				return nil
			})
			if err := testbed.AppendLog(st.AttachFile, "stderr", mark+" on stderr"); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "a line on stderr", func() error {
				if !strings.Contains(stderr.String(), mark+" on stderr\n") {
					return fmt.Errorf("stderr %q", stderr.String())
				}
				return nil
			})
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("attach did not end when its context did")
			}
		})
	}
}

// targetServer answers each connection on addr with a greeting, then echoes in upper case.
func targetServer(t *testing.T, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on the port-forward target %s: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintln(c, "target here")
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintln(c, strings.ToUpper(sc.Text()))
				}
			}()
		}
	}()
}

// talk connects to addr, reads greeting lines (if any), sends line and returns the reply line.
func talk(t *testing.T, addr, greeting, line string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	r := bufio.NewReader(c)
	if greeting != "" {
		got, err := r.ReadString('\n')
		if err != nil || got != greeting+"\n" {
			t.Fatalf("greeting %q %v, want %q", got, err, greeting)
		}
	}
	fmt.Fprintln(c, line)
	got, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reply to %q: %v", line, err)
	}
	return strings.TrimSuffix(got, "\n")
}

func backendPortForward(t *testing.T, st *testbed.PodStreams, cfg *rest.Config, ns, pod string) {
	targetServer(t, st.PortForwardTarget)
	u := portForwardURL(ns, pod)
	spdyDialer := func(t *testing.T) httpstream.Dialer {
		rt, upgrader, err := spdy.RoundTripperFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return spdy.NewDialer(upgrader, &http.Client{Transport: rt}, "POST", u)
	}
	wsDialer := func(t *testing.T) httpstream.Dialer {
		d, err := portforward.NewSPDYOverWebsocketDialer(u, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for name, dial := range map[string]func(*testing.T) httpstream.Dialer{"spdy": spdyDialer, "websocket": wsDialer} {
		t.Run(name, func(t *testing.T) {
			stop, ready := make(chan struct{}), make(chan struct{})
			var out, errOut syncBuffer
			fw, err := portforward.New(dial(t), []string{"0:8080", fmt.Sprintf("0:%d", st.EchoPort)}, stop, ready,
				&out, &errOut)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- fw.ForwardPorts() }()
			defer func() {
				close(stop)
				<-done
			}()
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("port-forward: %v (%s)", err, errOut.String())
			case <-time.After(20 * time.Second):
				t.Fatal("port-forward not ready")
			}
			ports, err := fw.GetPorts()
			if err != nil || len(ports) != 2 {
				t.Fatalf("ports %v %v", ports, err)
			}
			local := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i].Local) }
			for i := 0; i < 2; i++ { // one connection after another over the same forward
				if got := talk(t, local(0), "target here", "hello "+name); got != "HELLO "+strings.ToUpper(name) {
					t.Errorf("pod port 8080 (the target): %q", got)
				}
			}
			if got := talk(t, local(1), "", "echo "+name); got != "echo "+name {
				t.Errorf("pod port %d (echo): %q", st.EchoPort, got)
			}
		})
	}

	// The kubelet's own WebSocket port-forward protocol (v4.channel.k8s.io, ports in the query,
	// no SPDY inside), as an old client sends it: the API server passes it to kwok.
	t.Run("plain-websocket", func(t *testing.T) {
		tlsCfg, err := rest.TLSConfigFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		wsURL := *u
		wsURL.Scheme = "wss"
		wsURL.RawQuery = url.Values{"ports": {fmt.Sprint(st.EchoPort)}}.Encode()
		d := websocket.Dialer{TLSClientConfig: tlsCfg, Subprotocols: []string{"v4.channel.k8s.io"},
			HandshakeTimeout: 10 * time.Second}
		conn, resp, err := d.Dial(wsURL.String(), nil)
		if err != nil {
			body := ""
			if resp != nil {
				b, _ := io.ReadAll(resp.Body)
				body = resp.Status + " " + string(b)
			}
			t.Fatalf("dial %s: %v %s", wsURL.String(), err, body)
		}
		defer conn.Close()
		if conn.Subprotocol() != "v4.channel.k8s.io" {
			t.Errorf("subprotocol %q", conn.Subprotocol())
		}
		_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		// Each channel (0 data, 1 error) first carries the port, little endian.
		for ch := byte(0); ch < 2; ch++ {
			_, msg, err := conn.ReadMessage()
			if err != nil || len(msg) != 3 || msg[0] != ch || binary.LittleEndian.Uint16(msg[1:]) != uint16(st.EchoPort) {
				t.Fatalf("channel %d's port frame: %v %v", ch, msg, err)
			}
		}
		if err := conn.WriteMessage(websocket.BinaryMessage, append([]byte{0}, "plain websocket\n"...)); err != nil {
			t.Fatal(err)
		}
		var got []byte
		for !bytes.Contains(got, []byte("\n")) {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("read: %v (so far %q)", err, got)
			}
			if len(msg) > 0 && msg[0] == 0 {
				got = append(got, msg[1:]...)
			} else if len(msg) > 1 {
				t.Fatalf("error channel: %q", msg[1:])
			}
		}
		if string(got) != "plain websocket\n" {
			t.Errorf("echo %q", got)
		}
	})
}
