// Package report holds what every benchmark driver needs to record its results: the machine it
// ran on, its section of docs/perf.md, and burstlet's Prometheus counters.
package report

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// perfHeader starts docs/perf.md when a driver writes the first section of a new file.
const perfHeader = "# Performance\n\nEvery number here comes from a benchmark in `bench/`, with the command that\n" +
	"produced it, the machine, and the peer measured in the same run.\n"

// WriteSection replaces the text between <!-- name:begin --> and <!-- name:end --> markers,
// appending the block at the end when the markers are missing (after perfHeader when the
// file is new or empty).
func WriteSection(path, name, body string) error { return WriteSectionAfter(path, name, "", body) }

// WriteSectionAfter is WriteSection, but a missing block goes right after the block of section
// `after` when that one is there.
func WriteSectionAfter(path, name, after, body string) error {
	begin, end := "<!-- "+name+":begin -->", "<!-- "+name+":end -->"
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(data)
	if text == "" {
		text = perfHeader
	}
	block := begin + "\n" + body + end
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i >= 0 && j > i {
		text = text[:i] + block + text[j+len(end):]
	} else if k := strings.Index(text, "<!-- "+after+":end -->"); after != "" && k >= 0 {
		k += len("<!-- " + after + ":end -->")
		text = text[:k] + "\n\n" + block + text[k:]
	} else {
		text = strings.TrimRight(text, "\n") + "\n\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// Machine describes this machine: cores, CPU model, memory, OS/architecture.
func Machine() string {
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

// Scrape reads burstlet's Prometheus text: every burstlet_ sample but histogram buckets, keyed
// by the series as written (`name{label="value",...}`). nil when the endpoint does not answer.
func Scrape(url string) map[string]float64 {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "burstlet_") || strings.Contains(line, "_bucket{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// LabelValue is the value of one label of a series key as Scrape returns it ("" if absent).
func LabelValue(series, label string) string {
	i := strings.Index(series, label+"=\"")
	if i < 0 {
		return ""
	}
	rest := series[i+len(label)+2:]
	return rest[:strings.IndexByte(rest, '"')]
}
