// Command testbed starts and stops the local test bed of two real Kubernetes control planes.
//
//	testbed up   [flags]   start both planes, write kubeconfigs and state.json, exit
//	testbed down [--wipe]  stop every process recorded in state.json
//	testbed status         print what runs and where its kubeconfigs are
//	testbed cci-network-controller --kubeconfig K [flags]
//	                       the backend's network controller in CCI mode (up starts it)
//	testbed cci-gateway --kubeconfig K --burstlet-kubeconfig B --listen A [flags]
//	                       the backend's CCI gateway in CCI mode (up starts it)
//	testbed kwok-front --listen A --kwok URL [flags]
//	                       the backend kwok's kubelet API front: exec, the rest to kwok (up starts it)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"burstlet/e2e/testbed"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "up":
		up(os.Args[2:])
	case "down":
		down(os.Args[2:])
	case "status":
		status(os.Args[2:])
	case testbed.NetworkControllerName:
		networkController(os.Args[2:])
	case testbed.CCIGatewayName:
		cciGateway(os.Args[2:])
	case testbed.KwokFrontName:
		kwokFront(os.Args[2:])
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: testbed {up|down|status} [flags]; testbed <cmd> -h for flags")
	os.Exit(2)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "testbed: "+format+"\n", args...)
	os.Exit(1)
}

func up(args []string) {
	cfg := testbed.DefaultConfig("", "")
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	fs.StringVar(&cfg.BinDir, "bin-dir", "", "directory with the kube and kwok binaries (default <repo>/bin)")
	fs.StringVar(&cfg.StateDir, "state", "", "state directory (default <repo>/.state/testbed)")
	fs.IntVar(&cfg.ClusterWorkers.Count, "workers", cfg.ClusterWorkers.Count, "cluster worker nodes")
	fs.StringVar(&cfg.ClusterWorkers.CPU, "worker-cpu", cfg.ClusterWorkers.CPU, "CPU of each worker")
	fs.StringVar(&cfg.ClusterWorkers.Memory, "worker-memory", cfg.ClusterWorkers.Memory, "memory of each worker")
	fs.IntVar(&cfg.ClusterWorkers.Pods, "worker-pods", cfg.ClusterWorkers.Pods, "pod capacity of each worker")
	fs.IntVar(&cfg.BackendFleet.Count, "fleet", cfg.BackendFleet.Count, "backend fleet nodes")
	fs.IntVar(&cfg.BackendFleet.Pods, "fleet-pods", cfg.BackendFleet.Pods, "pod capacity of each fleet node")
	spdyOnly := fs.Bool("spdy-exec", false,
		"start the cluster apiserver with ExtendWebSocketsToKubelet=false (exec/attach to kubelets over SPDY)")
	fs.BoolVar(&cfg.Metrics, "metrics", cfg.Metrics,
		"run metrics-server on both planes (metrics.k8s.io, kubectl top; kwok simulates the resource metrics)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "give up starting after this long")
	fs.StringVar(&cfg.Backend, "backend", cfg.Backend,
		"backend plane mode: plain (runs any pod) or cci (refuses what CCI refuses: Network CRD, admission policies)")
	cciFlags(fs, &cfg.CCI)
	_ = fs.Parse(args)
	if *spdyOnly {
		cfg.ClusterFeatureGates = append(cfg.ClusterFeatureGates, "ExtendWebSocketsToKubelet=false")
	}
	if err := cfg.WithRepoDefaults(); err != nil {
		fail("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tb, err := testbed.Up(ctx, cfg)
	if err != nil {
		fail("up failed: %v", err)
	}
	fmt.Printf("testbed up in %.1fs (state %s)\n", tb.StartDur.Seconds(), tb.StateDir)
	printPlanes(tb)
}

// cciFlags are the CCI mode's options, for `up` (prefixed cci-) and the controller itself.
func cciFlags(fs *flag.FlagSet, o *testbed.CCIOptions) {
	prefix := "cci-"
	if fs.Name() == testbed.NetworkControllerName {
		prefix = ""
	}
	fs.DurationVar(&o.NetworkDelay, prefix+"network-delay", o.NetworkDelay,
		"how long a new Network stays Initializing before it turns Active (or Failed)")
	fs.Func(prefix+"failed-subnet", "a Network on this subnet (spec.subnetID or spec.networkID) turns Failed; "+
		"repeat or separate with commas", func(v string) error {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				o.FailedSubnets = append(o.FailedSubnets, s)
			}
		}
		return nil
	})
	fs.Func(prefix+"slow-subnet", "ID=DURATION: a Network on this subnet stays Initializing that long; repeatable",
		o.ParseSlowSubnet)
	if prefix == "" {
		return
	}
	fs.DurationVar(&o.NamespacePending, "cci-namespace-pending", o.NamespacePending,
		"how long a namespace created through the CCI gateway reads as Pending")
	accountFlag(fs, "cci-account", &o.Accounts)
}

// accountFlag is a repeatable NAME=QUOTA flag (QUOTA: namespaces, or unlimited); its first use
// replaces the default accounts.
func accountFlag(fs *flag.FlagSet, name string, accounts *[]testbed.CCIAccount) {
	replaced := false
	fs.Func(name, "a CCI gateway account NAME=QUOTA (QUOTA: how many namespaces it may own, or unlimited); "+
		"repeatable; replaces the default accounts e2e=unlimited and full=0", func(v string) error {
		a, err := testbed.ParseCCIAccount(v)
		if err != nil {
			return err
		}
		if !replaced {
			*accounts, replaced = nil, true
		}
		*accounts = append(*accounts, a)
		return nil
	})
}

func networkController(args []string) {
	opts := testbed.DefaultCCIOptions()
	fs := flag.NewFlagSet(testbed.NetworkControllerName, flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "the backend plane's admin kubeconfig")
	cciFlags(fs, &opts)
	_ = fs.Parse(args)
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := testbed.RunNetworkController(ctx, cfg, opts); err != nil {
		fail("%s: %v", testbed.NetworkControllerName, err)
	}
}

func cciGateway(args []string) {
	fs := flag.NewFlagSet(testbed.CCIGatewayName, flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "the backend plane's admin kubeconfig (the gateway's own operations)")
	burstletKubeconfig := fs.String("burstlet-kubeconfig", "",
		"burstlet's kubeconfig on the backend plane: requests are forwarded with its token")
	cfg := testbed.CCIGatewayConfig{NamespacePending: testbed.DefaultCCIOptions().NamespacePending}
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:0", "address to serve HTTPS on")
	fs.StringVar(&cfg.CertFile, "tls-cert-file", "", "serving certificate")
	fs.StringVar(&cfg.KeyFile, "tls-private-key-file", "", "serving certificate's key")
	dir := fs.String("accounts-dir", "", "directory of the accounts' <name>.aksk and <name>.token files")
	fs.DurationVar(&cfg.NamespacePending, "namespace-pending", cfg.NamespacePending,
		"how long a namespace created through the gateway reads as Pending")
	accounts := testbed.DefaultCCIAccounts()
	accountFlag(fs, "account", &accounts)
	_ = fs.Parse(args)
	var err error
	if cfg.Admin, err = clientcmd.BuildConfigFromFlags("", *kubeconfig); err != nil {
		fail("%v", err)
	}
	if cfg.Burstlet, err = clientcmd.BuildConfigFromFlags("", *burstletKubeconfig); err != nil {
		fail("%v", err)
	}
	gw := &testbed.CCIGateway{Dir: *dir}
	for _, a := range accounts {
		gw.Accounts = append(gw.Accounts, testbed.CCIGatewayAccount{Name: a.Name, NamespaceQuota: a.NamespaceQuota})
	}
	for _, a := range gw.Accounts {
		acct, err := gw.Account(a.Name)
		if err != nil {
			fail("%s: %v", testbed.CCIGatewayName, err)
		}
		cfg.Accounts = append(cfg.Accounts, acct)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := testbed.RunCCIGateway(ctx, cfg); err != nil {
		fail("%s: %v", testbed.CCIGatewayName, err)
	}
}

func kwokFront(args []string) {
	fs := flag.NewFlagSet(testbed.KwokFrontName, flag.ExitOnError)
	var cfg testbed.KwokFrontConfig
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:0", "address to serve HTTPS on (the nodes' kubelet port)")
	fs.StringVar(&cfg.CertFile, "tls-cert-file", "", "serving certificate")
	fs.StringVar(&cfg.KeyFile, "tls-private-key-file", "", "serving certificate's key")
	fs.StringVar(&cfg.Kwok, "kwok", "", "kwok's kubelet API, https://host:port")
	fs.StringVar(&cfg.CAFile, "ca-file", "", "CA of kwok's serving certificate")
	fs.StringVar(&cfg.Plane, "plane", "", "plane name, in "+testbed.ExecEnv+" of exec'd commands")
	fs.StringVar(&cfg.ExecDir, "exec-dir", "", "working directory of exec'd commands")
	_ = fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := testbed.RunKwokFront(ctx, cfg); err != nil {
		fail("%s: %v", testbed.KwokFrontName, err)
	}
}

func down(args []string) {
	fs := flag.NewFlagSet("down", flag.ExitOnError)
	state := fs.String("state", "", "state directory (default <repo>/.state/testbed)")
	wipe := fs.Bool("wipe", false, "also remove data, certificates and logs")
	_ = fs.Parse(args)
	cfg := testbed.Config{StateDir: *state}
	if err := cfg.WithRepoDefaults(); err != nil {
		fail("%v", err)
	}
	if err := testbed.Down(cfg.StateDir, *wipe); err != nil {
		fail("down failed: %v", err)
	}
	fmt.Println("testbed down")
}

func status(args []string) {
	fs := flag.NewFlagSet("status", flag.ExitOnError)
	state := fs.String("state", "", "state directory (default <repo>/.state/testbed)")
	_ = fs.Parse(args)
	cfg := testbed.Config{StateDir: *state}
	if err := cfg.WithRepoDefaults(); err != nil {
		fail("%v", err)
	}
	tb, err := testbed.Load(cfg.StateDir)
	if err != nil {
		fail("no testbed recorded in %s: %v", cfg.StateDir, err)
	}
	fmt.Printf("started %s ago\n", time.Since(tb.Started).Round(time.Second))
	printPlanes(tb)
	for _, r := range tb.Running() {
		fmt.Println("running:", r)
	}
}

func printPlanes(tb *testbed.Testbed) {
	if nw := tb.Network; nw != nil {
		fmt.Printf("node address %s (veth %s <-> %s in netns %s at %s, %s)\n", nw.HostIP, nw.HostInterface,
			nw.PeerInterface, nw.Namespace, nw.PeerIP, nw.CIDR)
	}
	for _, p := range []*testbed.Plane{tb.Cluster, tb.Backend} {
		fmt.Printf("%-8s %s\n  admin kubeconfig:    %s\n  burstlet kubeconfig: %s\n  nodes: %v\n",
			p.Name, p.Server, p.AdminKubeconfig, p.BurstletKubeconfig, p.NodeNames)
		if s := p.Streams; s != nil {
			fmt.Printf("  pod streams: logs %s (previous %s), attach %s, exec in %s, port-forward to %s (pod port %d echoes)\n",
				s.LogFile, s.PreviousLogFile, s.AttachFile, s.ExecDir, s.PortForwardTarget, s.EchoPort)
		}
		if m := p.MetricsServer; m != nil {
			fmt.Printf("  metrics-server: %s (log %s)\n", m.URL, m.Log)
		}
		if p.CCI != nil {
			fmt.Printf("  mode: cci (Networks Active after %v; failed subnets %v; slow subnets %v)\n",
				p.CCI.NetworkDelay, p.CCI.FailedSubnets, p.CCI.SlowSubnets)
		}
		if gw := p.CCIGateway; gw != nil {
			fmt.Printf("  cci gateway: %s (CA %s, log %s)\n", gw.URL, gw.CAFile, gw.Log)
			for _, a := range gw.Accounts {
				quota := fmt.Sprint(a.NamespaceQuota)
				if a.NamespaceQuota < 0 {
					quota = "unlimited"
				}
				fmt.Printf("    account %s (namespaces: %s): %s, %s\n", a.Name, quota, a.AKSKFile, a.TokenFile)
			}
		}
	}
}
