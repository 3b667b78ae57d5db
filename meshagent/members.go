package meshagent

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/serf/serf"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/record"
)

// Tags are what this member advertises.
func (a *Agent) tags() map[string]string {
	var paths []string
	for _, p := range a.set.Paths {
		paths = append(paths, p.Name+"="+p.Addr.String())
	}
	return map[string]string{tagRole: rowVer, tagPort: strconv.Itoa(a.set.Port), tagPaths: strings.Join(paths, ",")}
}

// maxIgnored bounds the members remembered as ignored.
const maxIgnored = 1024

// MaxMembers bounds the members an agent takes into its map and measures,
// at the scale the mesh is built and documented for (docs/mesh.md, Scale):
// a holder of the gossip key who joins under thousands of names makes it
// measure no more than that. Beyond, members are ignored, with the reason.
const MaxMembers = 1000

// parseMember reads a serf member's tags, or says why it is not an agent
// this one can measure. A path whose address is neither the member's
// gossip address nor inside the section's prefixes of that path is left
// out, and said in refused: a holder of the gossip key must not aim the
// probes of every agent at an address of its choosing.
func parseMember(m serf.Member, set *config.Agent) (out member, refused []string, err error) {
	out = member{port: 0, paths: map[string]netip.Addr{}}
	// The name becomes a target, a metric label, a hook argument, a CSV
	// cell and a part of the page's paths: the rule of node names.
	if err := config.CheckName(m.Name); err != nil {
		return out, nil, fmt.Errorf("member name: %w", err)
	}
	if a, ok := netip.AddrFromSlice(m.Addr); ok {
		out.addr = a.Unmap()
	}
	if m.Tags[tagRole] != rowVer {
		return out, nil, fmt.Errorf("tag %s=%q: not an abing agent of row format %s", tagRole, m.Tags[tagRole], rowVer)
	}
	port, err := strconv.Atoi(m.Tags[tagPort])
	if err != nil || port < 1 || port > 65535 {
		return out, nil, fmt.Errorf("tag %s=%q: want a UDP port", tagPort, m.Tags[tagPort])
	}
	out.port = uint16(port)
	paths, err := config.ParsePaths(m.Tags[tagPaths])
	if err != nil || len(paths) > config.MaxPaths {
		return out, nil, fmt.Errorf("tag %s=%q: want up to %d NAME=ADDRESS", tagPaths, m.Tags[tagPaths], config.MaxPaths)
	}
	for _, p := range paths {
		if !set.PathAllowed(p.Name, p.Addr, out.addr) {
			refused = append(refused, fmt.Sprintf("%s=%s", p.Name, p.Addr))
			continue
		}
		out.paths[p.Name] = p.Addr
	}
	if len(out.paths) == 0 {
		return out, refused, fmt.Errorf("paths %s: none is its gossip address %s or inside path_prefixes", strings.Join(refused, ","), out.addr)
	}
	return out, refused, nil
}

// ignoredOnce logs what of a member is not measured, once per member and
// reason, for at most maxIgnored members: gossip must not grow the map or
// flood the log. Under mu.
func (a *Agent) ignoredOnce(name, why string) {
	if old, seen := a.ignored[name]; old != why && (seen || len(a.ignored) < maxIgnored) {
		a.ignored[name] = why
		a.log.Warn("a member this agent does not measure in full", "member", name, "why", why)
	}
}

// events takes serf's events until ctx ends.
func (a *Agent) events(ctx context.Context, events <-chan serf.Event) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-events:
			switch e := e.(type) {
			case serf.MemberEvent:
				for _, m := range e.Members {
					a.member(m, e.Type, time.Now())
				}
			case serf.UserEvent:
				a.userEvent(e, time.Now())
			}
		}
	}
}

// member takes a member's change of state.
func (a *Agent) member(m serf.Member, typ serf.EventType, now time.Time) {
	if m.Name == a.cfg.Node {
		return
	}
	mem, refused, err := parseMember(m, &a.set)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil && typ != serf.EventMemberReap && !a.view.known(m.Name) && a.view.count() >= MaxMembers {
		err = fmt.Errorf("the map already holds %d members, the most an agent measures", MaxMembers)
	}
	if err != nil {
		a.ignoredOnce(m.Name, "ignored: "+err.Error())
		return
	}
	if len(refused) > 0 {
		a.ignoredOnce(m.Name, fmt.Sprintf("paths %s: not its gossip address %s and inside no network of path_prefixes: not measured", strings.Join(refused, ","), mem.addr))
	} else {
		delete(a.ignored, m.Name)
	}
	a.targets = true
	if typ == serf.EventMemberReap {
		// serf forgets a failed member after a day (a left one too): so
		// does the map, and its alarm ends.
		a.view.forget(m.Name)
		for _, c := range a.clients {
			c.ForgetNode(m.Name)
		}
		a.clear(m.Name, "forgotten", "forgotten by serf", now)
		return
	}
	mem.alive, mem.since = m.Status == serf.StatusAlive && typ != serf.EventMemberFailed && typ != serf.EventMemberLeave, now
	if mem.alive && a.view.size() == 1 {
		a.announce = true // alone until now: a landmark that restarted, found again by the others
	}
	a.view.setMember(m.Name, mem)
	a.log.Info("member "+typ.String(), "member", m.Name, "addr", mem.addr.String(), "status", m.Status.String())
	if d, isDown := a.down[m.Name]; typ == serf.EventMemberLeave && isDown && d.Severity == record.Critical {
		// A leave after a failure: serf's failure detector declared the
		// member dead before its leave intent arrived (the two race when
		// a member leaves), or an operator removed a failed member
		// (serf force-leave). Either way it left on purpose: the critical
		// alarm ends, and a warning says it left.
		a.clear(m.Name, "left", "left the mesh", now)
	}
	if _, isDown := a.down[m.Name]; (typ == serf.EventMemberFailed || typ == serf.EventMemberLeave) && !isDown {
		how, sev := "failed: serf's failure detector lost it", record.Critical
		if typ == serf.EventMemberLeave {
			how, sev = "left the mesh", record.Warning
		}
		al := record.Alarm{Kind: record.Down, Target: m.Name, Address: mem.addr.String(), Direction: "both", Severity: sev, Start: now,
			Before: 1, After: 0, Unit: "up", Summary: fmt.Sprintf("member %s %s", m.Name, how), Evidence: []record.Point{{Time: now, Value: 0}}}
		a.down[m.Name] = al
		a.alarms = append(a.alarms, al)
	} else if mem.alive {
		a.clear(m.Name, "up", "is back", now)
	}
}

// clear ends the down alarm of a member, if it has one. Under mu.
func (a *Agent) clear(name, how, what string, now time.Time) {
	d, ok := a.down[name]
	if !ok {
		return
	}
	end := now
	d.End, d.Cleared, d.Summary = &end, how, fmt.Sprintf("member %s %s", name, what)
	d.Evidence = append(slices.Clone(d.Evidence), record.Point{Time: now, Value: 1})
	delete(a.down, name)
	a.alarms = append(a.alarms, d)
}

// userEvent takes a row's part.
func (a *Agent) userEvent(e serf.UserEvent, now time.Time) {
	if !strings.HasPrefix(e.Name, EventPrefix) {
		return
	}
	p, err := Decode(e.Name, e.Payload, a.set.Dimensions)
	if err != nil {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.refused++
		a.metrics.refused.Inc()
		if now.Sub(a.warned) >= time.Minute { // a member that floods bad rows cannot flood the log
			a.warned = now
			a.log.Warn("a row's part refused (logged once a minute)", "err", err, "refused_so_far", a.refused)
		}
		return
	}
	if p.Node == a.cfg.Node {
		return // ours, applied when published
	}
	a.view.Apply(p, now)
	a.metrics.received.Inc()
}

// wantTargets are the keys (member/path) of what this node measures.
func (a *Agent) wantTargets() []string {
	var out []string
	for _, t := range a.targetList() {
		for p := range t.Paths {
			out = append(out, t.Name+"/"+p)
		}
	}
	return out
}

// targetList is every alive member on each path both have.
func (a *Agent) targetList() []config.Target {
	a.view.mu.Lock()
	defer a.view.mu.Unlock()
	var out []config.Target
	for _, name := range slices.Sorted(maps.Keys(a.view.members)) {
		m := a.view.members[name]
		if !m.alive {
			continue
		}
		t := a.cfg.NewTarget(name, "", map[string]string{})
		for _, p := range a.set.Paths {
			if addr, ok := m.paths[p.Name]; ok {
				t.Paths[p.Name] = net.JoinHostPort(addr.String(), strconv.Itoa(int(m.port)))
			}
		}
		if len(t.Paths) > 0 {
			out = append(out, t)
		}
	}
	return out
}
