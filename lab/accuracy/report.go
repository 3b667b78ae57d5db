package accuracy

import (
	"bytes"
	"fmt"
	"os"
)

// WriteBlock replaces, in the Markdown file at path, the lines between
// "<!-- begin NAME -->" and "<!-- end NAME -->" with report as a text
// block, so that the numbers in the documentation are the ones the command
// printed, and the prose around them stays.
func WriteBlock(path, name string, report []byte) error {
	b, i, j, err := findBlock(path, name)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	out.Write(b[:i])
	out.WriteString("```text\n")
	out.Write(bytes.TrimRight(report, "\n"))
	out.WriteString("\n```\n")
	out.Write(b[j:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// CheckBlock says whether WriteBlock would find its block.
func CheckBlock(path, name string) error {
	_, _, _, err := findBlock(path, name)
	return err
}

// findBlock reads path and returns where the block's content starts (after
// the begin line) and ends (at the end line).
func findBlock(path, name string) (b []byte, start, end int, err error) {
	if b, err = os.ReadFile(path); err != nil {
		return nil, 0, 0, err
	}
	bm, em := []byte("<!-- begin "+name+" -->\n"), []byte("<!-- end "+name+" -->")
	i, j := bytes.Index(b, bm), bytes.Index(b, em)
	if i < 0 || j < i+len(bm) {
		return nil, 0, 0, fmt.Errorf("%s: no %q … %q block to write the report into", path, bm[:len(bm)-1], em)
	}
	return b, i + len(bm), j, nil
}
