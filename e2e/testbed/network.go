package testbed

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Network is the test bed's own piece of network: a veth pair whose host end lives in the root
// network namespace with HostIP, and whose peer end lives in a network namespace the test bed owns
// with PeerIP, both in one /30. The API servers refuse to proxy nodes/<n>/proxy to a loopback
// address ("address not allowed"), so a node that must be reachable through them (burstlet's
// virtual node) gives HostIP as its InternalIP and serves its kubelet API there; processes in the
// root namespace reach it like any local address. The namespace's end can host stand-ins for
// pods (networking tests: `ip netns exec <Namespace> ...`).
type Network struct {
	// Namespace is the network namespace's name (`ip netns`), under /run/netns.
	Namespace string `json:"namespace"`
	// HostInterface is the veth end in the root namespace; PeerInterface the one in Namespace.
	HostInterface string `json:"hostInterface"`
	PeerInterface string `json:"peerInterface"`
	// HostIP is the address of HostInterface (10.250.x.y, the first of the /30): the node address.
	HostIP string `json:"hostIP"`
	// PeerIP is the address of PeerInterface, in Namespace.
	PeerIP string `json:"peerIP"`
	// CIDR is the /30 both ends are in.
	CIDR string `json:"cidr"`
}

// Command runs name in the test bed's network namespace (`ip netns exec`): a stand-in for a pod
// or a host on the other end of the veth pair, reachable from the root namespace at PeerIP.
func (nw *Network) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", nw.Namespace, name}, args...)...)
}

// networkBase is where test beds take their /30s from: 16384 of them, none used by the planes
// (service ranges 10.96/10.97, pod ranges 10.244-10.246).
var networkBase = net.IPv4(10, 250, 0, 0).To4()

const networkBlocks = 1 << 14

// networkNames derives the namespace and interface names from the state directory, so that two
// test beds on one machine never share them and `down` finds them without state.json.
func networkNames(stateDir string) (ns, host, peer string, seed uint32) {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	sum := sha256.Sum256([]byte(abs))
	id := hex.EncodeToString(sum[:4])
	// Interface names are at most 15 characters: "tb" + 8 hex + 1.
	return "testbed-" + id, "tb" + id + "h", "tb" + id + "p", binary.BigEndian.Uint32(sum[4:8])
}

// setupNetwork creates the test bed's namespace and veth pair (after removing leftovers of an
// earlier run of the same state directory) on a /30 that no local address overlaps.
func setupNetwork(ctx context.Context, stateDir string) (*Network, error) {
	teardownNetwork(ctx, stateDir, nil)
	ns, host, peer, seed := networkNames(stateDir)
	used, err := localNets()
	if err != nil {
		return nil, err
	}
	var block *net.IPNet
	for i := uint32(0); i < networkBlocks; i++ {
		n := (seed + i) % networkBlocks
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, binary.BigEndian.Uint32(networkBase)+n*4)
		candidate := &net.IPNet{IP: ip, Mask: net.CIDRMask(30, 32)}
		if !overlapsAny(candidate, used) {
			block = candidate
			break
		}
	}
	if block == nil {
		return nil, errors.New("network: no free /30 in 10.250.0.0/16")
	}
	hostIP := make(net.IP, 4)
	copy(hostIP, block.IP)
	hostIP[3]++
	peerIP := make(net.IP, 4)
	copy(peerIP, block.IP)
	peerIP[3] += 2
	nw := &Network{Namespace: ns, HostInterface: host, PeerInterface: peer, HostIP: hostIP.String(),
		PeerIP: peerIP.String(), CIDR: block.String()}
	steps := [][]string{
		{"netns", "add", ns},
		{"link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns},
		{"addr", "add", nw.HostIP + "/30", "dev", host},
		{"-n", ns, "addr", "add", nw.PeerIP + "/30", "dev", peer},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "set", peer, "up"},
		{"link", "set", host, "up"},
	}
	for _, args := range steps {
		if err := ipCommand(ctx, args...); err != nil {
			teardownNetwork(context.WithoutCancel(ctx), stateDir, nw)
			return nil, fmt.Errorf("network: %w (the test bed needs root and iproute2)", err)
		}
	}
	// An address is usable for listening at once, but wait until the kernel has it on the link
	// so that a listener started right after Up cannot race it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := canBind(nw.HostIP); err == nil {
			return nw, nil
		} else if time.Now().After(deadline) {
			teardownNetwork(context.WithoutCancel(ctx), stateDir, nw)
			return nil, fmt.Errorf("network: %s not usable: %w", nw.HostIP, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// teardownNetwork removes the namespace and veth pair of stateDir (and those recorded in nw, if
// other); missing ones are fine.
func teardownNetwork(ctx context.Context, stateDir string, nw *Network) {
	ns, host, _, _ := networkNames(stateDir)
	namespaces, hosts := []string{ns}, []string{host}
	if nw != nil {
		if nw.Namespace != ns {
			namespaces = append(namespaces, nw.Namespace)
		}
		if nw.HostInterface != host {
			hosts = append(hosts, nw.HostInterface)
		}
	}
	for _, h := range hosts {
		_ = ipCommand(ctx, "link", "del", h) // takes the peer with it
	}
	for _, n := range namespaces {
		_ = ipCommand(ctx, "netns", "del", n)
	}
}

func ipCommand(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// localNets lists the IPv4 networks of the root namespace's addresses.
func localNets() ([]*net.IPNet, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("network: list addresses: %w", err)
	}
	var nets []*net.IPNet
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			nets = append(nets, n)
		}
	}
	return nets, nil
}

func overlapsAny(n *net.IPNet, others []*net.IPNet) bool {
	for _, o := range others {
		if o.Contains(n.IP) || n.Contains(o.IP) {
			return true
		}
	}
	return false
}

func canBind(ip string) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return err
	}
	return l.Close()
}

// FreePort returns a TCP port that is free on ip (e.g. a kubelet port on the node address).
func FreePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
