package archtest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdName = regexp.MustCompile("(?:^|[\\s(`'\"])([\\w./-]+\\.md)\\b")
)

// The documentation stands on its own: every link of the README and of
// docs/ that is not a web address leads to a file of the repository, and
// every file name ending in .md that the prose mentions is one of its
// files. A doc that sends its reader to notes kept outside the repository
// (design notes, a shared folder) fails here.
func TestDocsStayInRepository(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"))
	known := map[string]bool{}
	for _, d := range docs {
		known[filepath.Base(d)] = true
	}
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, doc)
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "#") {
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			path := filepath.Clean(filepath.Join(filepath.Dir(doc), target))
			if !strings.HasPrefix(path, root+string(filepath.Separator)) {
				t.Errorf("%s: link %q leads outside the repository", rel, m[1])
				continue
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s: link %q: no such file in the repository", rel, m[1])
			}
		}
		for _, m := range mdName.FindAllStringSubmatch(string(b), -1) {
			if name := filepath.Base(m[1]); !known[name] {
				if _, err := os.Stat(filepath.Join(root, m[1])); err != nil {
					t.Errorf("%s: mentions %s, which is not in the repository", rel, m[1])
				}
			}
		}
	}
}
