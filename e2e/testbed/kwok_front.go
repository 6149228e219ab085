package testbed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/creack/pty"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// KwokFrontName is the process (and log, <state>/<plane>/<name>.log) in front of a plane's kwok
// kubelet API when the plane has pod streams: the nodes advertise its port. It runs exec itself
// and passes every other request (logs, attach, port-forward, metrics, healthz) to kwok.
//
// kwok v0.8's own exec loses the exit code (a command ending with 3 comes back as an internal
// error, where a kubelet reports NonZeroExitCode with the code) and crashes on a TTY exec
// without stdin; this one answers as a kubelet does.
const KwokFrontName = "kwok-front"

// Environment of the commands exec'd in a kwok pod, besides ExecEnv: which pod and container.
const (
	ExecPodNamespaceEnv = "TESTBED_POD_NAMESPACE"
	ExecPodNameEnv      = "TESTBED_POD_NAME"
	ExecContainerEnv    = "TESTBED_CONTAINER"
)

// KwokFrontConfig configures RunKwokFront.
type KwokFrontConfig struct {
	Listen            string // host:port to serve HTTPS on
	CertFile, KeyFile string // serving certificate
	Kwok              string // kwok's kubelet API, https://host:port
	CAFile            string // the CA of kwok's serving certificate
	Plane             string // ExecEnv's value
	ExecDir           string // working directory of exec'd commands
}

// RunKwokFront serves until ctx ends.
func RunKwokFront(ctx context.Context, cfg KwokFrontConfig) error {
	target, err := url.Parse(cfg.Kwok)
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		// Followed logs are flushed line by line.
		FlushInterval: -1,
		// HTTP/1.1 only: upgrades (attach, port-forward) pass through. A connection per request:
		// a POST (an attach's upgrade) on a kept-alive connection that kwok has just closed
		// fails with EOF and is not retried.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true,
			ForceAttemptHTTP2: false, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}},
		ErrorLog: log.New(os.Stderr, KwokFrontName+": ", log.LstdFlags),
	}
	ex := &localExecutor{plane: cfg.Plane, dir: cfg.ExecDir}
	mux := http.NewServeMux()
	mux.HandleFunc("/exec/", ex.serve)
	mux.Handle("/", proxy)
	srv := &http.Server{Addr: cfg.Listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(os.Stderr, KwokFrontName+": ", log.LstdFlags),
		// HTTP/1.1 only, as a kubelet's streaming server: the API server's upgrades need it.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	err = srv.ListenAndServeTLS(cfg.CertFile, cfg.KeyFile)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// localExecutor runs exec'd commands on this machine, as kwok's local exec, with a kubelet's
// answers: the exit code of a command that ends with one, stdin closed when the client closes it.
type localExecutor struct {
	plane, dir string
}

// serve handles /exec/{namespace}/{pod}/{container} and /exec/{namespace}/{pod}/{uid}/{container}.
func (e *localExecutor) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/exec/"), "/")
	if len(parts) != 3 && len(parts) != 4 {
		http.Error(w, "want /exec/{namespace}/{pod}/[{uid}/]{container}", http.StatusNotFound)
		return
	}
	ns, pod, container, uid := parts[0], parts[1], parts[len(parts)-1], ""
	if len(parts) == 4 {
		uid = parts[2]
	}
	cmd := r.URL.Query()["command"]
	if len(cmd) == 0 {
		http.Error(w, "missing command", http.StatusBadRequest)
		return
	}
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	remotecommand.ServeExec(w, r, e, ns+"/"+pod, uid, container, cmd, opts, 4*time.Hour, 30*time.Second,
		remotecommand.SupportedStreamingProtocols)
}

// ExecInContainer implements remotecommand.Executor; name is namespace/pod.
func (e *localExecutor) ExecInContainer(ctx context.Context, name, uid, container string, cmd []string, in io.Reader,
	out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, timeout time.Duration) error {
	ns, pod, _ := strings.Cut(name, "/")
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	c.Dir = e.dir
	c.Env = append(os.Environ(), ExecEnv+"="+e.plane, ExecPodNamespaceEnv+"="+ns, ExecPodNameEnv+"="+pod,
		ExecContainerEnv+"="+container)
	var err error
	if tty {
		err = runWithTTY(c, in, out, resize)
	} else {
		err = runPiped(c, in, out, errOut)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() >= 0 {
		return utilexec.CodeExitError{Err: err, Code: exit.ExitCode()}
	}
	return err
}

func runPiped(c *exec.Cmd, in io.Reader, out, errOut io.Writer) error {
	if out != nil {
		c.Stdout = out
	}
	if errOut != nil {
		c.Stderr = errOut
	}
	if in != nil {
		// Our own copy, closed at the client's end of stdin; Wait does not wait for it.
		stdin, err := c.StdinPipe()
		if err != nil {
			return err
		}
		go func() {
			_, _ = io.Copy(stdin, in)
			stdin.Close()
		}()
	}
	return c.Run()
}

func runWithTTY(c *exec.Cmd, in io.Reader, out io.Writer, resize <-chan remotecommand.TerminalSize) error {
	ptmx, err := pty.Start(c)
	if err != nil {
		return err
	}
	defer ptmx.Close()
	if resize != nil {
		go func() {
			for size := range resize {
				_ = pty.Setsize(ptmx, &pty.Winsize{Rows: size.Height, Cols: size.Width})
			}
		}()
	}
	if in != nil {
		go func() { _, _ = io.Copy(ptmx, in) }()
	}
	var copied sync.WaitGroup
	if out != nil {
		copied.Add(1)
		go func() {
			defer copied.Done()
			_, _ = io.Copy(out, ptmx) // ends with EIO once the command and its children are gone
		}()
	}
	err = c.Wait()
	done := make(chan struct{})
	go func() { copied.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second): // a child still holds the terminal
	}
	return err
}

// startKwokFront starts the plane's kwok front on a free port: the port the plane's nodes
// advertise (kwok's --node-port). It returns once the front answers /healthz through to kwok.
func (s *planeStarter) startKwokFront(ctx context.Context, frontPort int, cert keyPair) (*Process, error) {
	p := s.plane
	return s.start(ctx, KwokFrontName, s.testbedBin(), []string{KwokFrontName,
		fmt.Sprintf("--listen=127.0.0.1:%d", frontPort), "--tls-cert-file=" + cert.CertPath,
		"--tls-private-key-file=" + cert.KeyPath, fmt.Sprintf("--kwok=https://127.0.0.1:%d", p.KwokPort),
		"--ca-file=" + p.CAFile, "--plane=" + p.Name, "--exec-dir=" + p.Streams.ExecDir})
}

func (s *planeStarter) testbedBin() string { return s.binDir + "/testbed" }

// waitKwokFront waits until the front answers /healthz through to kwok.
func waitKwokFront(ctx context.Context, front *Process, p *Plane) error {
	client, err := adminHTTPClient(p)
	if err != nil {
		return err
	}
	return waitFor(ctx, front, KwokFrontName+" /healthz", func(ctx context.Context) error {
		return httpOK(ctx, client, fmt.Sprintf("https://127.0.0.1:%d/healthz", p.KubeletPort))
	})
}
