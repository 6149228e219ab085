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
	"runtime"
	"sort"
	"strings"
	"time"
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
	sum := summary{Pods: *pods, Rounds: *rounds, Machine: machine(),
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
	must(writeSection(filepath.Join(*root, "docs", "perf.md"), "informer", section))
}

func median(ss []sample, f func(sample) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

// writeSection replaces the text between <!-- name:begin --> and <!-- name:end --> markers.
func writeSection(path, name, body string) error {
	begin, end := "<!-- "+name+":begin -->", "<!-- "+name+":end -->"
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(data)
	if text == "" {
		text = "# Performance\n\nEvery number here comes from a benchmark in `bench/`, with the command that\nproduced it, the machine, and the peer measured in the same run.\n"
	}
	block := begin + "\n" + body + end
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i >= 0 && j > i {
		text = text[:i] + block + text[j+len(end):]
	} else {
		text = strings.TrimRight(text, "\n") + "\n\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "model name") {
				model = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(strings.TrimPrefix(strings.Split(string(data), "\n")[0], "MemTotal:"), "%f", &kb)
		mem = fmt.Sprintf(", %.0f GiB", kb/1024/1024)
	}
	return fmt.Sprintf("%d cores (%s)%s, %s/%s", runtime.NumCPU(), model, mem, runtime.GOOS, runtime.GOARCH)
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
