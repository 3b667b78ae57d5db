package main

import (
	"bytes"
	"io"

	"github.com/abing-net/abing/lab/accuracy"
)

// printReport runs print on out and, when path is set, also writes what it
// printed into the Markdown file's block (accuracy.WriteBlock). The block
// is looked for first: a wrong file fails before minutes of measuring, not
// after.
func printReport(out io.Writer, path, block string, print func(io.Writer) error) error {
	if path == "" {
		return print(out)
	}
	if err := accuracy.CheckBlock(path, block); err != nil {
		return err
	}
	var report bytes.Buffer
	if err := print(io.MultiWriter(out, &report)); err != nil {
		return err
	}
	return accuracy.WriteBlock(path, block, report.Bytes())
}
