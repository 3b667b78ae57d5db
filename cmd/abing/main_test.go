package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Bad input is refused with a message that names the problem, before any
// packet is sent.
func TestMeasureBadInput(t *testing.T) {
	dir := t.TempDir()
	open, two := filepath.Join(dir, "open"), filepath.Join(dir, "two")
	os.WriteFile(open, []byte("a 00112233445566778899aabbccddeeff\n"), 0o644)
	os.WriteFile(two, []byte("a 00112233445566778899aabbccddeeff\nb 00112233445566778899aabbccddeeff\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--size", "20", "198.18.2.2"}, "--size 20"},
		{[]string{"--size", "9001", "198.18.2.2"}, "--size 9001"},
		{[]string{"--pairs", "0", "198.18.2.2"}, "--pairs 0"},
		{[]string{"--train-len", "1", "198.18.2.2"}, "--train-len 1"},
		{[]string{"--output", "xml", "198.18.2.2"}, "--output"},
		{[]string{"--timestamps", "gps", "198.18.2.2"}, "timestamps"},
		{[]string{"-4", "-6", "198.18.2.2"}, "-4 and -6"},
		{[]string{"--count", "0", "198.18.2.2"}, "--count 0"},
		{[]string{}, "accepts 1 arg"},
		{[]string{"--key-file", open, "198.18.2.2"}, "chmod 600"},
		{[]string{"--key-file", two, "198.18.2.2"}, "2 keys (a, b)"},
		{[]string{"--key-file", two, "--key-name", "c", "198.18.2.2"}, "no key named \"c\""},
		{[]string{"--key-name", "a", "198.18.2.2"}, "--key-name needs --key-file"},
		{[]string{"--pairs", "20", "--precision", "0.2", "198.18.2.2"}, "give one or the other"},
		{[]string{"--size", "9000", "--max-bytes", "300000", "198.18.2.2"}, "--max-bytes 300000: want 738000"},
		{[]string{"--precision", "1.5", "198.18.2.2"}, "--precision 1.5"},
		{[]string{"--precision", "NaN", "198.18.2.2"}, "--precision NaN"},
		{[]string{"--max-bytes", "1000", "198.18.2.2"}, "--max-bytes 1000: want"},
		{[]string{"--protocol", "owamp", "198.18.2.2"}, `--protocol "owamp": want abing, stamp or twamp-light`},
		{[]string{"--protocol", "twamp-light", "--key-file", two, "--key-name", "a", "198.18.2.2"}, "--protocol twamp-light: TWAMP-Light has no authenticated mode"},
		{[]string{"--protocol", "stamp", "--key-file", two, "--key-name", "a", "--size", "150", "198.18.2.2"}, "--size 150: want at least 160 bytes for authenticated STAMP"},
	} {
		cmd := measureCommand()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(tc.args)
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}

// execute runs a fresh command from mk with args and stdin (nil: none) and
// returns what it printed on its standard output.
func execute(t *testing.T, mk func() *cobra.Command, stdin []byte, args ...string) (string, error) {
	t.Helper()
	cmd := mk()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(bytes.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}
