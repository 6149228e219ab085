package testbed

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// PodStreams is what a plane's kwok nodes serve for the containers of their pods through the
// API server's pods/log, pods/exec, pods/attach and pods/portforward: kwok's ClusterLogs,
// ClusterAttach and ClusterPortForward (loaded from its --config), and exec by the kwok front
// (kwok_front.go). The backend plane has them: burstlet's kubelet API reaches them through the
// backend API server.
type PodStreams struct {
	// Dir holds the files below.
	Dir string `json:"dir"`
	// LogFile is every container's log, in the container runtime's (CRI) format; AppendLog and
	// AppendLogAt write it. Tail, since, timestamps, limit and follow work as with a kubelet
	// (follow waits for appends).
	LogFile string `json:"logFile"`
	// PreviousLogFile is what `previous=true` reads.
	PreviousLogFile string `json:"previousLogFile"`
	// AttachFile is what an attach streams: the lines appended (AppendLog) after it starts.
	// Its stdin is read and dropped.
	AttachFile string `json:"attachFile"`
	// ExecDir is the working directory of exec'd commands, which run on this machine (as root)
	// with ExecEnv set to the plane's name and ExecPodNamespaceEnv, ExecPodNameEnv and
	// ExecContainerEnv to the pod's namespace and name and the container: `sh -c 'echo hi;
	// exit 3'` really runs and ends with code 3 as in a kubelet's answer. stdin ends when the
	// client closes it; with a TTY the command gets a terminal (resizes too).
	ExecDir string `json:"execDir"`
	// PortForwardTarget is host:port on this machine (the test bed's node address and
	// PortForwardTargetPort) where a port-forward to any pod port but EchoPort connects: a test
	// runs its server there.
	PortForwardTarget string `json:"portForwardTarget"`
	// EchoPort is the pod port whose port-forward runs `cat`: it sends back what it gets.
	EchoPort int32 `json:"echoPort"`
}

// ExecEnv is set, to the plane's name, for the commands exec'd in a kwok pod.
const ExecEnv = "TESTBED_KWOK_EXEC"

// PortForwardTargetPort is the port of PodStreams.PortForwardTarget: below the ephemeral range,
// so that no port the kernel hands out (FreePort, a burstlet's kubelet port) is ever it, and on
// the test bed's own node address, so that test beds do not share it.
const PortForwardTargetPort = 18080

// echoPort is PodStreams.EchoPort (the echo service's well-known port).
const echoPort = 7

// newPodStreams creates the files of a plane's pod streams under dir.
func newPodStreams(dir, nodeIP string) (*PodStreams, error) {
	if nodeIP == "" {
		nodeIP = "127.0.0.1"
	}
	s := &PodStreams{Dir: dir, LogFile: filepath.Join(dir, "container.log"),
		PreviousLogFile: filepath.Join(dir, "previous.log"), AttachFile: filepath.Join(dir, "attach.log"),
		ExecDir: filepath.Join(dir, "exec"), EchoPort: echoPort,
		PortForwardTarget: net.JoinHostPort(nodeIP, fmt.Sprint(PortForwardTargetPort))}
	if err := os.MkdirAll(s.ExecDir, 0o755); err != nil {
		return nil, err
	}
	for _, f := range []string{s.LogFile, s.PreviousLogFile, s.AttachFile} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// kwokConfig is kwok's configuration of these streams for every pod of the plane.
func (s *PodStreams) kwokConfig() string {
	host, port, _ := net.SplitHostPort(s.PortForwardTarget)
	// JSON strings are YAML strings: paths are quoted with %q.
	return fmt.Sprintf(`apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: testbed-logs
spec:
  logs:
  - logsFile: %q
    previousLogsFile: %q
    follow: true
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterAttach
metadata:
  name: testbed-attach
spec:
  attaches:
  - logsFile: %q
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterPortForward
metadata:
  name: testbed-port-forward
spec:
  forwards:
  - ports: [%d]
    command: [cat]
  - target:
      address: %q
      port: %s
`, s.LogFile, s.PreviousLogFile, s.AttachFile, s.EchoPort, host, port)
}

// AppendLog appends lines to a kwok log file (PodStreams.LogFile, PreviousLogFile, AttachFile)
// as a container runtime writes them, stamped now; stream is "stdout" or "stderr".
func AppendLog(path, stream string, lines ...string) error {
	return AppendLogAt(path, time.Now(), stream, lines...)
}

// AppendLogAt is AppendLog with the lines stamped at (for sinceTime and sinceSeconds).
func AppendLogAt(path string, at time.Time, stream string, lines ...string) error {
	var b strings.Builder
	stamp := at.UTC().Format(time.RFC3339Nano)
	for _, l := range lines {
		fmt.Fprintf(&b, "%s %s F %s\n", stamp, stream, l)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	// One write: a follower never sees half a line.
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
