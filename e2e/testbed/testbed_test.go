package testbed

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testConfig(t *testing.T) Config {
	t.Helper()
	cfg := DefaultConfig(os.Getenv("BURSTLET_BIN_DIR"), t.TempDir())
	if err := cfg.WithRepoDefaults(); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"kube", "kwok", "testbed"} {
		if _, err := os.Stat(filepath.Join(cfg.BinDir, b)); err != nil {
			t.Fatalf("testbed binaries not built (make testbed-bin): %v", err)
		}
	}
	cfg.ClusterWorkers.Count, cfg.BackendFleet.Count = 1, 1
	cfg.KillWithParent = true
	cfg.Timeout = time.Minute
	return cfg
}

// processesUnder lists live processes whose command line mentions dir.
func processesUnder(dir string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), dir) {
			continue
		}
		if state, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); strings.Contains(string(state), ") Z ") {
			continue
		}
		found = append(found, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return found
}

func TestUpThenDownLeavesNothingRunning(t *testing.T) {
	cfg := testConfig(t)
	tb, err := Up(context.Background(), cfg)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	if got := len(tb.Running()); got != 11 {
		t.Errorf("%d components running, want 11 (5 per plane and the backend's %s): %v", got, KwokFrontName,
			tb.Running())
	}
	for _, p := range []*Plane{tb.Cluster, tb.Backend} {
		for _, f := range []string{p.AdminKubeconfig, p.BurstletKubeconfig, p.CAFile} {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("%s: %v", p.Name, err)
			}
		}
	}
	loaded, err := Load(cfg.StateDir)
	if err != nil {
		t.Fatalf("state.json: %v", err)
	}
	if loaded.Cluster.Server != tb.Cluster.Server || loaded.Backend.Server == tb.Cluster.Server {
		t.Errorf("state.json servers %q/%q do not match the running planes", loaded.Cluster.Server, loaded.Backend.Server)
	}
	// Down works from the state file alone, as `testbed down` does in another process.
	if err := Down(cfg.StateDir, true); err != nil {
		t.Fatalf("down: %v", err)
	}
	if left := processesUnder(cfg.StateDir); len(left) > 0 {
		t.Fatalf("processes left after down: %v", left)
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "cluster")); !os.IsNotExist(err) {
		t.Errorf("wipe left the cluster state directory: %v", err)
	}
}

func TestFailedStartNamesComponentAndStopsEverything(t *testing.T) {
	cfg := testConfig(t)
	bin := t.TempDir()
	for _, b := range []string{"kube", "testbed"} {
		if err := os.Symlink(filepath.Join(cfg.BinDir, b), filepath.Join(bin, b)); err != nil {
			t.Fatal(err)
		}
	}
	// A kwok that dies at once: the start must fail naming kwok, with its log tail.
	script := "#!/bin/sh\necho 'kwok: simulated start failure' >&2\nexit 3\n"
	if err := os.WriteFile(filepath.Join(bin, "kwok"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.BinDir = bin
	_, err := Up(context.Background(), cfg)
	if err == nil {
		t.Fatal("up succeeded with a broken kwok")
	}
	for _, want := range []string{"kwok exited", "simulated start failure"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if left := processesUnder(cfg.StateDir); len(left) > 0 {
		t.Fatalf("processes left after failed start: %v", left)
	}
}

func TestUpRefusesMissingBinaries(t *testing.T) {
	cfg := testConfig(t)
	cfg.BinDir = t.TempDir()
	_, err := Up(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "make testbed-bin") {
		t.Fatalf("got %v, want an error pointing at make testbed-bin", err)
	}
}

// CCI mode adds the network controller and the CCI gateway to the backend plane; down stops them
// with the rest.
func TestCciModeUpThenDownLeavesNothingRunning(t *testing.T) {
	cfg := testConfig(t)
	cfg.Backend = BackendCCI
	cfg.CCI = CCIOptions{NetworkDelay: 200 * time.Millisecond, FailedSubnets: []string{"bad"}}
	tb, err := Up(context.Background(), cfg)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	running := tb.Running()
	if len(running) != 13 || !strings.Contains(strings.Join(running, " "), "backend/"+NetworkControllerName) ||
		!strings.Contains(strings.Join(running, " "), "backend/"+CCIGatewayName) {
		t.Errorf("running %v, want the 11 components, backend/%s and backend/%s", running, NetworkControllerName,
			CCIGatewayName)
	}
	loaded, err := Load(cfg.StateDir)
	if err != nil {
		t.Fatalf("state.json: %v", err)
	}
	if loaded.Backend.CCI == nil || loaded.Backend.CCI.NetworkDelay != cfg.CCI.NetworkDelay ||
		loaded.Cluster.CCI != nil {
		t.Errorf("state.json CCI options: backend %+v cluster %+v", loaded.Backend.CCI, loaded.Cluster.CCI)
	}
	gw := loaded.Backend.CCIGateway
	if gw == nil || !strings.HasPrefix(gw.URL, "https://127.0.0.1:") || gw.CAFile != loaded.Backend.CAFile ||
		len(gw.Accounts) != 2 || loaded.Cluster.CCIGateway != nil {
		t.Fatalf("state.json CCI gateway: %+v", gw)
	}
	for _, a := range gw.Accounts {
		for _, f := range []string{a.AKSKFile, a.TokenFile} {
			if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("account file %s: %v %v", f, err, st)
			}
		}
		acct, err := gw.Account(a.Name)
		if err != nil || acct.AccessKey == "" || acct.SecretKey == "" || acct.Token == "" {
			t.Errorf("account %s: %v", a.Name, err)
		}
		if data, _ := os.ReadFile(statePath(cfg.StateDir)); strings.Contains(string(data), acct.SecretKey) ||
			strings.Contains(string(data), acct.Token) {
			t.Errorf("state.json holds account %s's secrets", a.Name)
		}
	}
	if err := Down(cfg.StateDir, true); err != nil {
		t.Fatalf("down: %v", err)
	}
	if left := processesUnder(cfg.StateDir); len(left) > 0 {
		t.Fatalf("processes left after down: %v", left)
	}
}

func TestUpRefusesUnknownBackend(t *testing.T) {
	cfg := testConfig(t)
	cfg.Backend = "gke"
	if _, err := Up(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "unknown backend mode") {
		t.Fatalf("got %v, want an error naming the unknown backend mode", err)
	}
}
