package tests

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	corev1 "k8s.io/api/core/v1"
)

// --- the test's network ---

// netLab is a network the test owns: a "lan" network namespace with a bridge, and network
// namespaces for the burst pod, two cluster pods and the cluster DNS pod, each with a veth into
// the bridge, in one /24 of 10.252.0.0/16; plus a veth pair from the root namespace into the
// bridge, whose root end (hostIP) is the node's address on that network. The burst pod's default
// route goes via hostIP, as a pod's does via its node.
type netLab struct {
	lan, burst, ep1, ep2, dns            string // network namespaces
	hostIf                               string // the root namespace's end
	hostIP, burstIP, ep1IP, ep2IP, dnsIP string
	netproxy                             *netproxyProcess
}

func newNetLab(t *testing.T) *netLab {
	t.Helper()
	id := fmt.Sprintf("%06x", rand.Uint32()&0xffffff)
	l := &netLab{lan: "np" + id + "-lan", burst: "np" + id + "-burst", ep1: "np" + id + "-ep1", ep2: "np" + id + "-ep2",
		dns: "np" + id + "-dns", hostIf: "np" + id + "h"}
	prefix, err := freeSlash24()
	if err != nil {
		t.Fatal(err)
	}
	l.hostIP, l.burstIP, l.ep1IP, l.ep2IP, l.dnsIP = prefix+"1", prefix+"2", prefix+"3", prefix+"4", prefix+"5"
	t.Cleanup(l.teardown)
	steps := [][]string{
		{"netns", "add", l.lan},
		{"-n", l.lan, "link", "set", "lo", "up"},
		{"-n", l.lan, "link", "add", "br0", "type", "bridge"},
		{"-n", l.lan, "link", "set", "br0", "up"},
	}
	for _, m := range []struct{ netns, ip, port string }{
		{l.burst, l.burstIP, "v-burst"}, {l.ep1, l.ep1IP, "v-ep1"}, {l.ep2, l.ep2IP, "v-ep2"}, {l.dns, l.dnsIP, "v-dns"}} {
		steps = append(steps,
			[]string{"netns", "add", m.netns},
			[]string{"-n", m.netns, "link", "set", "lo", "up"},
			[]string{"-n", l.lan, "link", "add", m.port, "type", "veth", "peer", "name", "eth0", "netns", m.netns},
			[]string{"-n", l.lan, "link", "set", m.port, "master", "br0", "up"},
			[]string{"-n", m.netns, "addr", "add", m.ip + "/24", "dev", "eth0"},
			[]string{"-n", m.netns, "link", "set", "eth0", "up"})
	}
	steps = append(steps,
		[]string{"link", "add", l.hostIf, "type", "veth", "peer", "name", "v-host", "netns", l.lan},
		[]string{"-n", l.lan, "link", "set", "v-host", "master", "br0", "up"},
		[]string{"addr", "add", l.hostIP + "/24", "dev", l.hostIf},
		[]string{"link", "set", l.hostIf, "up"},
		[]string{"-n", l.burst, "route", "add", "default", "via", l.hostIP})
	for _, args := range steps {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
	}
	eventually(t, 5*time.Second, "the host address "+l.hostIP+" usable", func() error {
		ln, err := net.Listen("tcp", net.JoinHostPort(l.hostIP, "0"))
		if err != nil {
			return err
		}
		return ln.Close()
	})
	t.Logf("network: %s0/24, host %s (%s), burst pod %s, ep1 %s, ep2 %s, dns %s", prefix, l.hostIP, l.hostIf,
		l.burstIP, l.ep1IP, l.ep2IP, l.dnsIP)
	return l
}

func (l *netLab) teardown() {
	_ = exec.Command("ip", "link", "del", l.hostIf).Run()
	for _, n := range []string{l.burst, l.ep1, l.ep2, l.dns, l.lan} {
		_ = exec.Command("ip", "netns", "del", n).Run()
	}
}

// freeSlash24 picks a /24 of 10.252.0.0/16 ("10.252.x.") that no address or route of the root
// namespace overlaps.
func freeSlash24() (string, error) {
	var used []*net.IPNet
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			used = append(used, n)
		}
	}
	if out, err := exec.Command("ip", "-4", "route", "show", "table", "all").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			fields := strings.Fields(line)
			if len(fields) == 0 {
				continue
			}
			if _, n, err := net.ParseCIDR(fields[0]); err == nil && n.IP.To4() != nil {
				used = append(used, n)
			}
		}
	}
	start := rand.Intn(256)
	for i := 0; i < 256; i++ {
		x := (start + i) % 256
		candidate := &net.IPNet{IP: net.IPv4(10, 252, byte(x), 0).To4(), Mask: net.CIDRMask(24, 32)}
		free := true
		for _, u := range used {
			if ones, _ := u.Mask.Size(); ones == 0 {
				continue // a default route overlaps everything
			}
			if u.Contains(candidate.IP) || candidate.Contains(u.IP) {
				free = false
				break
			}
		}
		if free {
			return fmt.Sprintf("10.252.%d.", x), nil
		}
	}
	return "", errors.New("no free /24 in 10.252.0.0/16")
}

// inNetns runs fn on a thread in network namespace `name` (sockets fn creates stay there).
func inNetns(name string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer unix.Close(orig)
	target, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", name, err)
	}
	ferr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// The thread stays locked to this goroutine and ends with it, never serving another.
		return fmt.Errorf("setns back from %s: %w", name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// serveTCPName answers every connection to addr (in netns) with `name`, then closes it.
func serveTCPName(t *testing.T, netns, addr, name string) {
	t.Helper()
	var ln net.Listener
	if err := inNetns(netns, func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatalf("listen %s in %s: %v", addr, netns, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(name))
			c.Close()
		}
	}()
}

// serveUDPName answers every datagram to addr (in netns) with `name`.
func serveUDPName(t *testing.T, netns, addr, name string) {
	t.Helper()
	var pc net.PacketConn
	if err := inNetns(netns, func() (err error) { pc, err = net.ListenPacket("udp", addr); return }); err != nil {
		t.Fatalf("listen %s/udp in %s: %v", addr, netns, err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(name), from)
		}
	}()
}

// serveDNS answers A queries for `name` with ip (others NXDOMAIN) on addr/udp in netns. It returns
// what it saw: "<source ip> <name>" per query.
func serveDNS(t *testing.T, netns, addr, name string, ip net.IP) func() []string {
	t.Helper()
	var pc net.PacketConn
	if err := inNetns(netns, func() (err error) { pc, err = net.ListenPacket("udp", addr); return }); err != nil {
		t.Fatalf("listen %s/udp in %s: %v", addr, netns, err)
	}
	t.Cleanup(func() { pc.Close() })
	var mu sync.Mutex
	var seen []string
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			mu.Lock()
			seen = append(seen, from.(*net.UDPAddr).IP.String()+" "+q.Name.String())
			mu.Unlock()
			known := strings.EqualFold(q.Name.String(), name) && q.Type == dnsmessage.TypeA
			rcode := dnsmessage.RCodeSuccess
			if !strings.EqualFold(q.Name.String(), name) {
				rcode = dnsmessage.RCodeNameError
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true,
				RecursionDesired: h.RecursionDesired, RCode: rcode})
			b.EnableCompression()
			_ = b.StartQuestions()
			_ = b.Question(q)
			_ = b.StartAnswers()
			if known {
				var a dnsmessage.AResource
				copy(a.A[:], ip.To4())
				_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA,
					Class: dnsmessage.ClassINET, TTL: 5}, a)
			}
			msg, err := b.Finish()
			if err == nil {
				_, _ = pc.WriteTo(msg, from)
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// askAPIServer opens TLS from netns to addr (the cluster CA, serverName) and GETs /version: any
// HTTP status shows that the API server was reached.
func (l *netLab) askAPIServer(netns, addr, serverName string, caPEM []byte) (int, error) {
	var c net.Conn
	if err := inNetns(netns, func() (err error) { c, err = net.DialTimeout("tcp", addr, 3*time.Second); return }); err != nil {
		return 0, err
	}
	defer c.Close()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tc := tls.Client(c, &tls.Config{ServerName: serverName, RootCAs: pool})
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		return 0, fmt.Errorf("TLS to %s: %w", addr, err)
	}
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/version", nil)
	if err != nil {
		return 0, err
	}
	if err := req.Write(tc); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// askTCP connects from netns to addr and returns what the server says.
func (l *netLab) askTCP(netns, addr string) (string, error) {
	var c net.Conn
	if err := inNetns(netns, func() (err error) { c, err = net.DialTimeout("tcp", addr, 3*time.Second); return }); err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	data, err := io.ReadAll(c)
	if err != nil {
		return "", fmt.Errorf("read from %s: %w", addr, err)
	}
	return string(data), nil
}

// askUDP sends a datagram from netns to addr (a new socket: a new flow) and returns the answer.
func (l *netLab) askUDP(netns, addr string) (string, error) {
	var c net.Conn
	if err := inNetns(netns, func() (err error) { c, err = net.Dial("udp", addr); return }); err != nil {
		return "", err
	}
	defer c.Close()
	buf := make([]byte, 1500)
	var last error
	for try := 0; try < 3; try++ {
		if _, err := c.Write([]byte("who")); err != nil {
			return "", fmt.Errorf("udp %s: %w", addr, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		if err == nil {
			return string(buf[:n]), nil
		}
		last = err
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
	}
	return "", fmt.Errorf("udp %s: %w", addr, last)
}

// udpRefused sends a datagram from netns to addr and wants the ICMP port unreachable back: a
// read that fails with connection refused. (A reject in the sender's own output hook also fails
// the send itself with EPERM, as the kernel reports any locally dropped packet; the ICMP comes
// all the same.)
func (l *netLab) udpRefused(netns, addr string) error {
	var c net.Conn
	if err := inNetns(netns, func() (err error) { c, err = net.Dial("udp", addr); return }); err != nil {
		return err
	}
	defer c.Close()
	_, werr := c.Write([]byte("who"))
	if werr != nil && !errors.Is(werr, syscall.EPERM) {
		return fmt.Errorf("udp %s: send: %w", addr, werr)
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	n, err := c.Read(make([]byte, 1500))
	if err == nil {
		return fmt.Errorf("udp %s answered %d bytes, want it refused", addr, n)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("udp %s: send error %v, then %v; want connection refused (ICMP port unreachable)", addr, werr, err)
	}
	return nil
}

// resolve asks the DNS server at addr, from netns, for the A record of name.
func (l *netLab) resolve(netns, addr, name string) (string, error) {
	var c net.Conn
	if err := inNetns(netns, func() (err error) { c, err = net.Dial("udp", addr); return }); err != nil {
		return "", err
	}
	defer c.Close()
	id := uint16(rand.Intn(1 << 16))
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	_ = b.StartQuestions()
	_ = b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	query, err := b.Finish()
	if err != nil {
		return "", err
	}
	if _, err := c.Write(query); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return "", fmt.Errorf("dns %s: %w", addr, err)
	}
	var p dnsmessage.Parser
	h, err := p.Start(buf[:n])
	if err != nil {
		return "", err
	}
	if h.ID != id || h.RCode != dnsmessage.RCodeSuccess {
		return "", fmt.Errorf("dns answer id %d (want %d) rcode %v", h.ID, id, h.RCode)
	}
	if err := p.SkipAllQuestions(); err != nil {
		return "", err
	}
	answers, err := p.AllAnswers()
	if err != nil {
		return "", err
	}
	for _, a := range answers {
		if r, ok := a.Body.(*dnsmessage.AResource); ok {
			return net.IP(r.A[:]).String(), nil
		}
	}
	return "", fmt.Errorf("dns: no A record in %d answers", len(answers))
}

// forwardTCP listens on ip:<free port> in the root namespace and pipes each connection to
// target. It returns the listening host:port.
func forwardTCP(t *testing.T, ip, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return ln.Addr().String()
}

// --- the sidecar, run for real ---

type netproxyProcess struct {
	cmd  *exec.Cmd
	out  syncBuffer
	done chan struct{}
}

// netproxyRunning fails the test at once when the sidecar has exited (it runs until stopped).
func (l *netLab) netproxyRunning(t *testing.T) {
	t.Helper()
	select {
	case <-l.netproxy.done:
		t.Fatalf("netproxy exited (%s); output:\n%s", l.netproxy.cmd.ProcessState, l.netproxy.out.String())
	default:
	}
}

// runNetproxy runs the sidecar's command and args (the image's "burstlet" being $BURSTLET) in the
// burst pod's network namespace, with the backend secret's data as its credentials directory.
// It is killed when the test ends; its output and the namespace's ruleset are logged on failure.
func (l *netLab) runNetproxy(t *testing.T, sidecar *corev1.Container, credentials map[string][]byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "netproxy")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for k, v := range credentials {
		if err := os.WriteFile(filepath.Join(dir, k), v, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	argv := append(append([]string(nil), sidecar.Command...), sidecar.Args...)
	if len(argv) == 0 || argv[0] != "burstlet" {
		t.Fatalf("sidecar runs %q, want the image's burstlet", argv)
	}
	argv[0] = os.Getenv("BURSTLET")
	replaced := false
	for i, a := range argv {
		if strings.HasPrefix(a, "--credentials=") {
			argv[i] = "--credentials=" + dir
			replaced = true
		}
	}
	if !replaced {
		t.Fatalf("sidecar args %q have no --credentials=", sidecar.Args)
	}
	p := &netproxyProcess{done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", l.burst}, argv...)...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start netproxy: %v", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	l.netproxy = p
	t.Logf("netproxy: ip netns exec %s %s", l.burst, strings.Join(argv, " "))
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		rules, err := exec.Command("ip", "netns", "exec", l.burst, "nft", "list", "ruleset").CombinedOutput()
		t.Logf("nft list ruleset in %s (%v):\n%s", l.burst, err, rules)
		state := "running"
		select {
		case <-p.done:
			state = "exited: " + p.cmd.ProcessState.String()
		default:
		}
		t.Logf("netproxy (%s) output:\n%s", state, p.out.String())
	})
}
