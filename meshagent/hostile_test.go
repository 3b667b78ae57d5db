package meshagent

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"

	"github.com/abing-net/abing/alarms"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/store"
)

// rawMember is a plain serf member on loopback, which says whatever a test
// wants it to.
func rawMember(t *testing.T, name string, tags map[string]string, keyring *memberlist.Keyring) *serf.Serf {
	t.Helper()
	conf := serf.DefaultConfig()
	conf.NodeName, conf.Tags = name, tags
	conf.UserEventSizeLimit = serf.UserEventSizeLimit
	conf.Logger = log.New(io.Discard, "", 0)
	conf.MemberlistConfig = memberlist.DefaultLocalConfig()
	conf.MemberlistConfig.BindAddr, conf.MemberlistConfig.BindPort = "127.0.0.1", 0 // a port the kernel chooses
	conf.MemberlistConfig.Logger = conf.Logger
	conf.MemberlistConfig.Keyring = keyring
	s, err := serf.Create(conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown() })
	return s
}

// TestHostileMember: a member of the gossip that is not an agent, or
// publishes rows out of range, in someone else's name or as the agent
// itself, changes nothing in the agent's map and does not stop it.
func TestHostileMember(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an agent for a few seconds")
	}
	dir := t.TempDir()
	a := startLoop(t, "a", nil, filepath.Join(dir, "a.db"))
	evil := rawMember(t, "evil", map[string]string{"abing": "1", "port": "99999", "paths": "direct=127.0.0.1"}, nil)
	waitFor(t, "evil joins", 10*time.Second, func() bool {
		n, _ := evil.Join([]string{a.gossip}, false)
		return n == 1
	})
	coordOK := `"coord":{"Vec":[0.001,0.002],"Error":1.5,"Adjustment":0,"Height":0.00001}`
	for _, e := range []struct{ name, payload string }{
		{"row:evil", `{"n":"evil","path":"direct",` + coordOK + `,"it":1,"links":[{"p":"a","c":96,"r":-5,"l":0,"j":0}]}`},
		{"row:evil", `{"n":"evil","path":"direct",` + coordOK + `,"it":1,"links":[{"p":"a","c":96,"r":1e999,"l":0,"j":0}]}`},
		{"row:evil", `{"n":"evil","path":"direct","coord":{"Vec":[1,2,3],"Error":1,"Adjustment":0,"Height":0},"it":1,"links":[]}`},
		{"row:evil", `{"n":"evil","path":"direct",` + coordOK + `,"it":1,"links":[{"p":"a","c":96,"r":5,"l":7,"j":0}]}`},
		{"row:evil", `not json at all`},
		{"row:b", `{"n":"evil","path":"direct",` + coordOK + `,"it":1,"links":[]}`},
		// The agent's own row comes only from the agent.
		{"row:a", `{"n":"a","path":"direct",` + coordOK + `,"it":99,"links":[{"p":"evil","c":1,"r":1,"l":0,"j":0}]}`},
		// Last, a good row: once it is in, every one before it was taken
		// or refused.
		{"row:evil", `{"n":"evil","path":"direct",` + coordOK + `,"it":1,"links":[{"p":"a","c":96,"r":5,"l":0,"j":0}]}`},
	} {
		if err := evil.UserEvent(e.name, []byte(e.payload), false); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the good row arrives", 10*time.Second, func() bool {
		a.agent.view.mu.Lock()
		defer a.agent.view.mu.Unlock()
		return a.agent.view.rows["evil"]["direct"] != nil && a.agent.view.rows["evil"]["direct"].links["a"] != nil
	})
	a.agent.view.mu.Lock()
	if r := a.agent.view.rows["evil"]["direct"]; len(r.links) != 1 || len(r.links["a"].hist) != 1 || r.links["a"].hist[0].l.RTT != 5 || len(a.agent.view.rows) != 2 {
		t.Errorf("evil's row holds %+v (of %d rows)", r.links["a"].hist, len(a.agent.view.rows))
	}
	a.agent.view.mu.Unlock()
	// Gossip keeps no order: wait for the six bad parts too.
	waitFor(t, "six parts refused", 10*time.Second, func() bool {
		a.agent.mu.Lock()
		defer a.agent.mu.Unlock()
		return a.agent.refused == 6
	})
	// Its tags advertise a port no reflector has: it is no target and no
	// node of the map, and the agent answers on.
	if n := mapNames(t, a.netloc); len(n) != 0 {
		t.Errorf("the map lists %v", n)
	}
	if recs := a.agent.view.Records(time.Time{}); len(recs) != 0 {
		t.Errorf("records from hostile rows: %+v", recs)
	}
	if loc := ask(t, a.netloc, `{"action":"get_location"}`); loc == nil || loc["loc"].(map[string]any)["iteration"].(float64) == 99 {
		t.Errorf("get_location: %v", loc)
	}
	if got := a.agent.targetList(); len(got) != 0 {
		t.Errorf("targets %+v", got)
	}
}

// TestEncryptedMesh: an agent with a keyring does not let a member without
// it join; two agents with the keyring and one keys file for the probes
// measure each other (their reflectors answer signed probes), while an
// agent with another key gets no answer.
func TestEncryptedMesh(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an agent for a few seconds")
	}
	dir := t.TempDir()
	kf := filepath.Join(dir, "keyring")
	if err := os.WriteFile(kf, []byte("9pB0yQ1GHQyVmbSAZ7H8U1mBVmXJxG2ZR7qXS5Xy1/4=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "keys")
	if err := os.WriteFile(keys, []byte("mesh 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other-keys")
	if err := os.WriteFile(other, []byte("mesh ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startLoopWith(t, "a", filepath.Join(dir, "a.db"), loopOpts{keyring: kf, keysFile: keys})
	plain := rawMember(t, "plain", nil, nil)
	time.Sleep(500 * time.Millisecond)
	if n, err := plain.Join([]string{a.gossip}, false); n != 0 || err == nil {
		t.Errorf("a member without the key joined: %d %v", n, err)
	}
	kr, err := LoadKeyring(kf)
	if err != nil {
		t.Fatal(err)
	}
	keyed := rawMember(t, "keyed", nil, kr)
	if n, err := keyed.Join([]string{a.gossip}, false); n != 1 {
		t.Errorf("a member with the key: %d %v", n, err)
	}
	join := []string{a.gossip}
	startLoopWith(t, "b", filepath.Join(dir, "b.db"), loopOpts{join: join, keyring: kf, keysFile: keys})
	startLoopWith(t, "c", filepath.Join(dir, "c.db"), loopOpts{join: join, keyring: kf, keysFile: other})
	waitFor(t, "a and b measure each other", 20*time.Second, func() bool {
		links := map[string]bool{}
		for _, r := range a.agent.view.Records(time.Time{}) {
			links[r.Node+">"+r.Target] = true
		}
		return links["a>b"] && links["b>a"]
	})
	// c's probes are signed with another key: a and b do not answer
	// them, and c's keys refuse theirs. A few more rounds go by.
	time.Sleep(3 * time.Second)
	for _, r := range a.agent.view.Records(time.Time{}) {
		if r.Node == "c" || r.Target == "c" {
			t.Errorf("a link with c, whose key differs: %+v", r)
		}
	}
}

// TestMemberNameChecked: a member whose name is not a node name (HTML, a
// "/" that would split it into target and path, a formula) is ignored with
// the reason: no target, no node of the map. Before, such a name became a
// target, a metric label, a hook argument and a CSV cell.
func TestMemberNameChecked(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an agent for a few seconds")
	}
	a := startLoop(t, "a", nil, filepath.Join(t.TempDir(), "a.db"))
	tags := map[string]string{"abing": "1", "port": "8176", "paths": "direct=127.0.0.1"}
	names := []string{"<img src=x onerror=alert(1)>/x", "=HYPERLINK(1)"}
	for _, name := range names {
		evil := rawMember(t, name, tags, nil)
		waitFor(t, "the member joins", 10*time.Second, func() bool {
			n, _ := evil.Join([]string{a.gossip}, false)
			return n == 1
		})
	}
	waitFor(t, "both ignored", 10*time.Second, func() bool {
		a.agent.mu.Lock()
		defer a.agent.mu.Unlock()
		return len(a.agent.ignored) == len(names)
	})
	a.agent.mu.Lock()
	for _, name := range names {
		if why := a.agent.ignored[name]; !strings.Contains(why, "member name") {
			t.Errorf("%q ignored because %q", name, why)
		}
	}
	a.agent.mu.Unlock()
	if got := a.agent.targetList(); len(got) != 0 {
		t.Errorf("targets %+v", got)
	}
	if n := mapNames(t, a.netloc); len(n) != 0 {
		t.Errorf("the map lists %v", n)
	}
	// The bad names in a's member list keep no one out: an agent that
	// joins through a merges that list (serf's own name check, which the
	// agent's duplicate-name guard would switch on, would refuse it whole).
	b := startLoop(t, "b", []string{a.gossip}, filepath.Join(t.TempDir(), "b.db"))
	waitFor(t, "b joins past the bad names", 10*time.Second, func() bool {
		return b.agent.Health() == nil && slices.ContainsFunc(a.agent.serf.Members(), func(m serf.Member) bool { return m.Name == "b" })
	}, a, b)
}

// TestGhostMembers: what a holder of the gossip key does by joining under
// many names. Members that advertise a path address that is not their
// gossip address (here 127.0.0.99, where the probes would go) are not
// measured, with the reason. Members that are measured and then vanish
// together raise one alarm that counts them, not one each: before, 100
// such ghosts raised 100 critical alarms (and ran 100 hooks).
func TestGhostMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an agent for half a minute")
	}
	a := startLoop(t, "a", nil, filepath.Join(t.TempDir(), "a.db"))
	join := func(s *serf.Serf) {
		waitFor(t, "the member joins", 10*time.Second, func() bool {
			n, _ := s.Join([]string{a.gossip}, false)
			return n == 1
		})
	}
	const aimers, ghosts = 4, 6
	for i := range aimers {
		join(rawMember(t, fmt.Sprintf("aim%d", i), map[string]string{"abing": "1", "port": "9", "paths": "direct=127.0.0.99"}, nil))
	}
	var gs []*serf.Serf
	for i := range ghosts {
		g := rawMember(t, fmt.Sprintf("ghost%02d", i), map[string]string{"abing": "1", "port": "9", "paths": "direct=127.0.0.1"}, nil)
		join(g)
		gs = append(gs, g)
	}
	waitFor(t, "the ghosts are targets", 10*time.Second, func() bool { return len(a.agent.targetList()) == ghosts })
	a.agent.mu.Lock()
	for i := range aimers {
		if why := a.agent.ignored[fmt.Sprintf("aim%d", i)]; !strings.Contains(why, "direct=127.0.0.99") || !strings.Contains(why, "gossip address 127.0.0.1") {
			t.Errorf("aim%d ignored because %q", i, why)
		}
	}
	a.agent.mu.Unlock()
	for _, g := range gs {
		g.Shutdown() // no leave: serf's failure detector finds them gone
	}
	// Each ghost raises two down alarms: its reflector never answers
	// (ghostNN/direct, from the monitor's detector) and its member failed
	// (ghostNN, from serf, over tens of seconds). Once all have failed
	// and been held: a few alarms of their own (fewer than
	// alarms.GroupMin) and one group alarm for the rest, which counts
	// them as they come (alarms.TestGrouper).
	waitFor(t, "every ghost fails", 60*time.Second, func() bool {
		a.agent.mu.Lock()
		defer a.agent.mu.Unlock()
		return len(a.agent.down) == ghosts
	})
	time.Sleep(alarms.GroupHold + 2*time.Second)
	s, err := store.Open(a.db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var own, groups int
	var summary string
	err = s.Alarms(context.Background(), store.Filter{}, func(al *record.Alarm) error {
		switch {
		case al.Kind != record.Down || !al.Active():
		case al.Target == alarms.GroupTarget:
			groups++
			summary = al.Summary
		case strings.HasPrefix(al.Target, "ghost"):
			own++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if own >= alarms.GroupMin || groups != 1 {
		t.Errorf("%d ghosts vanished: %d alarms of their own and %d group alarms (%q)", ghosts, own, groups, summary)
	}
	t.Logf("%d alarms of their own, and %q", own, summary)
}
