package report

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "perf.md")
	read := func() string {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	// A new file gets the header, then the block.
	if err := WriteSection(path, "a", "one\n"); err != nil {
		t.Fatal(err)
	}
	want := perfHeader + "\n<!-- a:begin -->\none\n<!-- a:end -->\n"
	if got := read(); got != want {
		t.Fatalf("new file:\n%q\nwant\n%q", got, want)
	}
	// Text after a block stays after it; a new block named after it goes right behind it.
	if err := os.WriteFile(path, []byte(want+"\n### notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSectionAfter(path, "b", "a", "two\n"); err != nil {
		t.Fatal(err)
	}
	want = perfHeader + "\n<!-- a:begin -->\none\n<!-- a:end -->\n\n<!-- b:begin -->\ntwo\n<!-- b:end -->\n\n### notes\n"
	if got := read(); got != want {
		t.Fatalf("after a:\n%q\nwant\n%q", got, want)
	}
	// An existing block is replaced in place; without its `after` block a new one is appended.
	if err := WriteSectionAfter(path, "a", "x", "uno\n"); err != nil {
		t.Fatal(err)
	}
	if err := WriteSectionAfter(path, "c", "x", "three\n"); err != nil {
		t.Fatal(err)
	}
	want = perfHeader + "\n<!-- a:begin -->\nuno\n<!-- a:end -->\n\n<!-- b:begin -->\ntwo\n<!-- b:end -->\n\n### notes\n" +
		"\n<!-- c:begin -->\nthree\n<!-- c:end -->\n"
	if got := read(); got != want {
		t.Fatalf("replace and append:\n%q\nwant\n%q", got, want)
	}
}

func TestLabelValue(t *testing.T) {
	s := `burstlet_backend_requests_total{verb="POST",code="201"}`
	if v, c := LabelValue(s, "verb"), LabelValue(s, "code"); v != "POST" || c != "201" {
		t.Fatalf("verb %q code %q", v, c)
	}
	if v := LabelValue(s, "outcome"); v != "" {
		t.Fatalf("absent label: %q", v)
	}
}
