package accuracy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.md")
	doc := "# Accuracy\n\nprose before\n<!-- begin report -->\n```text\nold\n```\n<!-- end report -->\nprose after\n"
	os.WriteFile(path, []byte(doc), 0o644)
	if err := WriteBlock(path, "report", []byte("new 1\nnew 2\n")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := "# Accuracy\n\nprose before\n<!-- begin report -->\n```text\nnew 1\nnew 2\n```\n<!-- end report -->\nprose after\n"
	if string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
	if err := CheckBlock(path, "report"); err != nil {
		t.Error(err)
	}
	if err := WriteBlock(path, "stability", []byte("x")); err == nil || !strings.Contains(err.Error(), "begin stability") {
		t.Errorf("missing block: %v", err)
	}
}
