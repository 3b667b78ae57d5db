package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A report goes to the output and into its block; a file without the
// block fails before anything is measured; a failed run leaves the file
// as it was.
func TestPrintReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.md")
	doc := "prose\n<!-- begin sim -->\n```text\nold\n```\n<!-- end sim -->\n"
	os.WriteFile(path, []byte(doc), 0o644)
	var out bytes.Buffer
	if err := printReport(&out, path, "sim", func(w io.Writer) error { _, err := io.WriteString(w, "new\n"); return err }); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if out.String() != "new\n" || !strings.Contains(string(b), "```text\nnew\n```") {
		t.Errorf("output %q, file %q", out.String(), b)
	}
	ran := false
	if err := printReport(io.Discard, path, "report", func(io.Writer) error { ran = true; return nil }); err == nil || ran {
		t.Errorf("missing block: err %v, printed %v", err, ran)
	}
	failed := errors.New("interrupted")
	if err := printReport(io.Discard, path, "sim", func(w io.Writer) error { io.WriteString(w, "half"); return failed }); !errors.Is(err, failed) {
		t.Errorf("failed run: %v", err)
	}
	if b2, _ := os.ReadFile(path); !bytes.Equal(b, b2) {
		t.Errorf("failed run changed the file: %q", b2)
	}
	out.Reset()
	if err := printReport(&out, "", "sim", func(w io.Writer) error { _, err := io.WriteString(w, "x"); return err }); err != nil || out.String() != "x" {
		t.Errorf("no file: %q %v", out.String(), err)
	}
}
