package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/abing-net/abing/internal/testenv"
	"github.com/abing-net/abing/measure"
	"github.com/abing-net/abing/stamp"
)

// TestCapabilitiesDropped: started as an unprivileged user with
// CAP_NET_ADMIN, as systemd's AmbientCapabilities or setcap give it (what
// --interface needs while the socket is set up), the reflector holds no
// capability on any thread once it listens, and answers. A binary built
// without cgo clears them from every thread; one built with cgo (the
// ordinary build where gcc is installed) cannot, and re-executes itself
// without them, same PID, with its sockets inherited. Before, the cgo
// build refused to run.
func TestCapabilitiesDropped(t *testing.T) {
	testenv.NeedRoot(t, "starting a process with capabilities needs root")
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	dir, err := os.MkdirTemp("", "abing-caps-") // not t.TempDir: its parent is closed to nobody
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // nobody runs the binaries from here
	bins := map[string]string{}
	for _, cgo := range []string{"0", "1"} {
		bins[cgo] = filepath.Join(dir, "reflector-cgo"+cgo)
		build := exec.Command("go", "build", "-o", bins[cgo], ".")
		build.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build: %v\n%s", err, out)
		}
	}
	for _, tc := range []struct {
		name, cgo string
		setcap    bool
		want      string // in the log
	}{
		{"ambient, no cgo", "0", false, "dropped capabilities"},
		{"ambient, cgo", "1", false, "re-executed: no capabilities held"},
		{"setcap, no cgo", "0", true, "dropped capabilities"},
		{"setcap, cgo", "1", true, "re-executed: no capabilities held"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := bins[tc.cgo]
			attr := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
			if tc.setcap {
				setcap(t, bin, unix.CAP_NET_ADMIN)
				t.Cleanup(func() { unix.Removexattr(bin, "security.capability") })
			} else {
				attr.AmbientCaps = []uintptr{unix.CAP_NET_ADMIN}
			}
			cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--stamp", "127.0.0.1:0", "--web.listen-address", "127.0.0.1:0", "--user", "root")
			cmd.SysProcAttr = attr
			errs, _ := cmd.StderrPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				cmd.Process.Signal(syscall.SIGTERM)
				go io.Copy(io.Discard, errs)
				cmd.Wait()
			}()
			sc := bufio.NewScanner(errs)
			var log []string
			var addr, metrics, stampAddr string
			for (addr == "" || stampAddr == "") && sc.Scan() {
				log = append(log, sc.Text())
				if m := regexp.MustCompile(`reflector listening.*addr=(\S+).*metrics=(\S+)`).FindStringSubmatch(sc.Text()); m != nil {
					addr, metrics = m[1], m[2]
				}
				if m := regexp.MustCompile(`STAMP reflector listening.*addr=(\S+)`).FindStringSubmatch(sc.Text()); m != nil {
					stampAddr = m[1]
				}
			}
			text := strings.Join(log, "\n")
			if addr == "" || !strings.Contains(text, tc.want) {
				t.Fatalf("log:\n%s", text)
			}
			if !tc.setcap && tc.cgo == "0" && strings.Contains(text, "re-executing") {
				t.Errorf("a build without cgo re-executed:\n%s", text)
			}
			// Every thread of the process started (same PID) holds
			// nothing.
			tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", cmd.Process.Pid))
			for _, task := range tasks {
				b, _ := os.ReadFile(task)
				for _, l := range strings.Split(string(b), "\n") {
					if f := strings.Fields(l); len(f) == 2 && strings.HasPrefix(f[0], "Cap") && f[0] != "CapBnd:" && f[1] != "0000000000000000" {
						t.Errorf("%s: %s", task, l)
					}
				}
			}
			if len(tasks) < 2 {
				t.Errorf("%d threads", len(tasks))
			}
			// Every socket works: a measurement, a STAMP reply, the
			// metrics.
			if r := stampReply(t, stampAddr); r.SenderSeq != 77 {
				t.Errorf("STAMP reply %+v", r)
			}
			mcfg := measure.Defaults().Fixed()
			mcfg.Target, mcfg.Timeout = addr, 2*time.Second
			if _, err := measure.Run(context.Background(), mcfg); err != nil {
				t.Errorf("measurement: %v", err)
			}
			if body := get(t, metrics); !strings.Contains(body, `abing_reflector_sent_messages_total{type="reply"} 64`) {
				t.Errorf("metrics: %.300s", body)
			}
		})
	}
}

// stampReply sends one STAMP test packet to addr and returns the reply.
func stampReply(t *testing.T, addr string) stamp.Reply {
	t.Helper()
	c, err := net.Dial("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := (&stamp.Test{Seq: 77}).Append(nil, 100)
	c.Write(b)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := c.Read(b)
	if err != nil {
		t.Fatalf("STAMP at %s: %v", addr, err)
	}
	r, err := stamp.ParseReply(b[:n])
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// setcap gives a file the capability cap, permitted and effective, as
// setcap(8) cap_net_admin+ep does: the xattr of capabilities(7),
// VFS_CAP_REVISION_2.
func setcap(t *testing.T, path string, cap int) {
	t.Helper()
	const revision2, effective = 0x02000000, 0x000001 // linux/capability.h
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], revision2|effective)
	binary.LittleEndian.PutUint32(b[4:], 1<<cap) // data[0].permitted
	if err := unix.Setxattr(path, "security.capability", b, 0); err != nil {
		t.Skipf("setcap %s: %v (the file system keeps no capabilities)", path, err)
	}
}
