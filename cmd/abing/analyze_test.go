package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const recordedCapture = "../../capture/testdata/emulated-20M.pcapng.gz"

// abing analyze on a capture of an emulated run: text, JSON, the listing,
// standard input.
func TestAnalyzeCommand(t *testing.T) {
	out, err := execute(t, analyzeCommand, nil, recordedCapture)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "session ") || !strings.Contains(lines[0], "198.18.1.2:") ||
		!strings.Contains(lines[1], "forward  DBC 18.4") || !strings.Contains(lines[2], "reverse  DBC 18.9") {
		t.Errorf("text output:\n%s", out)
	}
	out, err = execute(t, analyzeCommand, nil, "--output", "json", "--method", "abwe", "--clock", "hardware", recordedCapture)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, "\n"); n != 2 || !strings.Contains(out, `"method":"abwe"`) || !strings.Contains(out, `"timestamp_source":"kernel"`) ||
		!strings.Contains(out, "from a capture: session") || !strings.Contains(out, "stamped by hardware every 1ns") {
		t.Errorf("json output:\n%s", out)
	}
	out, err = execute(t, analyzeCommand, nil, "--list", recordedCapture)
	if err != nil {
		t.Fatal(err)
	}
	list := strings.Split(strings.TrimSpace(out), "\n")
	if len(list) < 300 || !strings.Contains(list[0], "hello") || !strings.Contains(list[len(list)-1], "close") {
		t.Errorf("listing of %d lines: %q … %q", len(list), list[0], list[len(list)-1])
	}
	id := strings.Fields(list[0])[6]
	data, _ := os.ReadFile(recordedCapture)
	out, err = execute(t, analyzeCommand, data, "--session", id, "-")
	if err != nil || !strings.Contains(out, "session "+id) {
		t.Errorf("--session %s from standard input: %v\n%s", id, err, out)
	}
}

// Bad input: a message that says what is wrong.
func TestAnalyzeBadInput(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("not a capture, but some notes of mine\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "accepts 1 arg"},
		{[]string{"--output", "xml", recordedCapture}, "--output \"xml\""},
		{[]string{"--clock", "gps", recordedCapture}, "--clock \"gps\": want kernel or hardware"},
		{[]string{"--method", "magic", recordedCapture}, "--method \"magic\""},
		{[]string{"--session", "xyz", recordedCapture}, "--session \"xyz\": want a session id in hex"},
		{[]string{"--session", "1", recordedCapture}, "no datagram of session 0000000000000001"},
		{[]string{"--list", "--session", "1", recordedCapture}, "no abing datagram in"},
		{[]string{filepath.Join(dir, "absent.pcap")}, "no such file"},
		{[]string{text}, text + ": not a pcap or pcapng file"},
	} {
		_, err := execute(t, analyzeCommand, nil, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}
