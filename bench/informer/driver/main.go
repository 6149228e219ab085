// Command driver runs the informer benchmark: a cold list+watch sync of N pods from the
// testbed's cluster API server into burstlet's Informer and into a client-go informer, in the
// same run on the same testbed, alternating, several rounds. It writes
// bench/results/informer-latest.json and the informer section of docs/perf.md.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"burstlet/bench/internal/report"
)

type sample struct {
	System    string  `json:"system"`
	Objects   int     `json:"objects"`
	SyncS     float64 `json:"sync_s"`
	PeakRSSMB float64 `json:"peak_rss_mb"`
}

type summary struct {
	Pods     int                 `json:"pods"`
	Rounds   int                 `json:"rounds"`
	Machine  string              `json:"machine"`
	Command  string              `json:"command"`
	Date     string              `json:"date"`
	Systems  map[string]sample   `json:"systems"` // medians
	Samples  map[string][]sample `json:"samples"`
	Verdicts map[string]bool     `json:"targets_met"`
}

func main() {
	root := flag.String("root", ".", "repository root")
	pods := flag.Int("pods", 10000, "pods to sync")
	rounds := flag.Int("rounds", 5, "runs per system")
	command := flag.String("command", "make bench-informer", "the command line to record")
	flag.Parse()
	bin := filepath.Join(*root, "bin")
	state := filepath.Join(*root, ".state", "bench-informer")
	must(run(filepath.Join(bin, "testbed"), "up", "--state", state))
	defer func() { _ = run(filepath.Join(bin, "testbed"), "down", "--state", state, "--wipe") }()
	kubeconfig := filepath.Join(state, "cluster", "admin.kubeconfig")
	must(run(filepath.Join(bin, "informer-peer"), "populate", "-kubeconfig", kubeconfig,
		"-namespace", "bench", "-pods", fmt.Sprint(*pods)))

	cmds := map[string][]string{
		"burstlet":  {filepath.Join(*root, "build", "release", "bench", "informer_bench"), "-kubeconfig", kubeconfig, "-namespace", "bench"},
		"client-go": {filepath.Join(bin, "informer-peer"), "sync", "-kubeconfig", kubeconfig, "-namespace", "bench"},
	}
	samples := map[string][]sample{}
	for r := 0; r < *rounds; r++ {
		for _, sys := range []string{"burstlet", "client-go"} {
			out, err := exec.Command(cmds[sys][0], cmds[sys][1:]...).Output()
			if err != nil {
				must(fmt.Errorf("%s: %v", sys, err))
			}
			var s sample
			must(json.Unmarshal(bytes.TrimSpace(out), &s))
			if s.Objects != *pods {
				must(fmt.Errorf("%s synced %d objects, want %d", sys, s.Objects, *pods))
			}
			samples[sys] = append(samples[sys], s)
			fmt.Printf("round %d %-9s sync %.2fs  peak RSS %.1f MB\n", r+1, sys, s.SyncS, s.PeakRSSMB)
		}
	}
	sum := summary{Pods: *pods, Rounds: *rounds, Machine: report.Machine(),
		Command: *command, Date: time.Now().UTC().Format(time.RFC3339),
		Systems: map[string]sample{}, Samples: samples, Verdicts: map[string]bool{}}
	for sys, ss := range samples {
		sum.Systems[sys] = sample{System: sys, Objects: *pods,
			SyncS:     median(ss, func(s sample) float64 { return s.SyncS }),
			PeakRSSMB: median(ss, func(s sample) float64 { return s.PeakRSSMB })}
	}
	b, g := sum.Systems["burstlet"], sum.Systems["client-go"]
	sum.Verdicts["rss_at_most_half_of_client_go"] = b.PeakRSSMB <= g.PeakRSSMB/2
	sum.Verdicts["sync_no_slower_than_client_go"] = b.SyncS <= g.SyncS
	data, _ := json.MarshalIndent(sum, "", "  ")
	must(os.MkdirAll(filepath.Join(*root, "bench", "results"), 0o755))
	must(os.WriteFile(filepath.Join(*root, "bench", "results", "informer-latest.json"), append(data, '\n'), 0o644))
	table := fmt.Sprintf("| system | pods | sync to cache (median of %d) | peak RSS (median) |\n|---|---|---|---|\n", *rounds)
	for _, sys := range []string{"burstlet", "client-go"} {
		s := sum.Systems[sys]
		table += fmt.Sprintf("| %s | %d | %.2f s | %.1f MB |\n", sys, *pods, s.SyncS, s.PeakRSSMB)
	}
	fmt.Print(table)
	section := fmt.Sprintf(`## Informer: cold list+watch sync of %d pods

Command: `+"`%s`"+` (driver: `+"`bench/informer/driver`"+`), run %s.
Machine: %s. Testbed: the cluster plane of `+"`bin/testbed up`"+` (kube-apiserver v1.36.3).
Pods: %d in one namespace, each two containers with env, resources, probe (bench/informer/clientgo).
Each system is a fresh process per round (burstlet `+"`build/release/bench/informer_bench`"+`,
client-go v0.36.3 `+"`SharedInformerFactory`"+` pods informer), alternating, %d rounds;
sync = process start to "synced"; peak RSS = VmHWM after holding the cache 0.5 s.

%s
Targets: burstlet RSS <= half of client-go's: **%v**; sync no slower than client-go: **%v**.
Raw samples: `+"`bench/results/informer-latest.json`"+`.
`, *pods, sum.Command, sum.Date, sum.Machine, *pods, *rounds, table,
		sum.Verdicts["rss_at_most_half_of_client_go"], sum.Verdicts["sync_no_slower_than_client_go"])
	must(report.WriteSection(filepath.Join(*root, "docs", "perf.md"), "informer", section))
}

func median(ss []sample, f func(sample) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
