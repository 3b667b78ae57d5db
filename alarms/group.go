package alarms

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/abing-net/abing/record"
)

// Down alarms go out through a Grouper. Each is held GroupHold first: a
// target (or a mesh member) that is back by then raises nothing, and
// targets that go down together raise one alarm for all of them (an
// uplink cut, a data centre's outage, or a holder of a mesh's gossip key
// who joined under a hundred names and vanished) that says how many and
// which, instead of one each (and one hook run each).
const (
	GroupHold = 5 * time.Second
	// GroupMin is how many targets of one severity down at once (held
	// together, plus those whose own alarms are still active) make a
	// group alarm instead of one each.
	GroupMin = 3
	// GroupTarget is the target of a group alarm: no target or node name
	// holds parentheses, so no target's alarm can be taken for it.
	GroupTarget = "(group)"
	// GroupUpdate: a group that grows is raised again (same start, so a
	// store updates it) when its count doubles, or this long after it was
	// last raised.
	GroupUpdate = 30 * time.Second
	// groupNames is how many names a group alarm's summary lists (its
	// Members lists them all).
	groupNames = 8
)

// Grouper holds and groups down alarms; other kinds pass through. Not
// safe for concurrent use.
type Grouper struct {
	down   map[string]*downState // by target and direction
	groups map[string]*downGroup // open groups, by severity
}

// downState is one target down.
type downState struct {
	alarm  record.Alarm // its own; held until raised, unless a group takes it
	raised bool
	group  *downGroup
}

// downGroup is one alarm for many targets down.
type downGroup struct {
	alarm  record.Alarm
	down   map[string]bool // keys of the group's targets still down
	raised int             // members the group had when last raised
	at     time.Time       // when last raised
}

// NewGrouper returns a Grouper that holds nothing.
func NewGrouper() *Grouper {
	return &Grouper{down: map[string]*downState{}, groups: map[string]*downGroup{}}
}

func downKey(a *record.Alarm) string { return a.Target + "\x00" + a.Direction }

// Take takes an alarm raised or ended at now and returns what to deliver
// now. A down alarm raised is held (Flush raises it); one that ends while
// held is dropped with it; one that ends in a group leaves it, and the
// group's alarm ends with its last target.
func (g *Grouper) Take(a record.Alarm, now time.Time) []record.Alarm {
	if a.Kind != record.Down {
		return []record.Alarm{a}
	}
	k := downKey(&a)
	s, ok := g.down[k]
	if a.Active() {
		if ok && s.raised {
			return nil // still down: said already
		}
		g.down[k] = &downState{alarm: a}
		return nil
	}
	if !ok {
		return []record.Alarm{a} // the end of an alarm raised before this Grouper
	}
	delete(g.down, k)
	switch {
	case s.group != nil:
		gr := s.group
		delete(gr.down, k)
		if len(gr.down) > 0 {
			return nil
		}
		if g.groups[gr.alarm.Severity] == gr {
			delete(g.groups, gr.alarm.Severity)
		}
		end := now
		gr.alarm.End, gr.alarm.Cleared = &end, a.Cleared
		gr.alarm.Summary = fmt.Sprintf("%s down together: back or gone: %s", targets(len(gr.alarm.Members)), listNames(gr.alarm.Members))
		gr.alarm.Evidence = append(slices.Clone(gr.alarm.Evidence), record.Point{Time: now, Value: 0})
		return []record.Alarm{gr.alarm}
	case s.raised:
		return []record.Alarm{a}
	}
	return nil // back within the hold
}

// Flush raises what has been held GroupHold by now: once the oldest held
// alarm of a severity is due, every held alarm of that severity goes out,
// one each, or as one group when they and the active ones of that severity
// are GroupMin or more; while a group is open, new ones join it. A group's
// alarm is raised again (same start, so a store updates it) when its
// count doubles, or GroupUpdate after it was last raised: a slow trickle
// of failures gives a few alarms, not one each.
func (g *Grouper) Flush(now time.Time) []record.Alarm {
	return g.flush(now, GroupHold)
}

// Close raises everything held, as Flush would once due: the monitor
// stops.
func (g *Grouper) Close(now time.Time) []record.Alarm {
	return g.flush(now, 0)
}

func (g *Grouper) flush(now time.Time, hold time.Duration) []record.Alarm {
	var out []record.Alarm
	for _, sev := range []string{record.Critical, record.Warning, record.Info} {
		var held []string
		due, active := false, 0
		for k, s := range g.down {
			switch {
			case s.alarm.Severity != sev:
			case s.raised && s.group == nil:
				active++
			case !s.raised:
				held = append(held, k)
				due = due || now.Sub(s.alarm.Start) >= hold
			}
		}
		if due {
			out = append(out, g.take(sev, held, active)...)
		}
		if gr := g.groups[sev]; gr != nil {
			if n := len(gr.alarm.Members); n >= 2*gr.raised || n > gr.raised && now.Sub(gr.at) >= GroupUpdate {
				gr.raised, gr.at = n, now
				gr.alarm.After = float64(len(gr.down))
				gr.alarm.Summary = fmt.Sprintf("%s down together: %s", targets(n), listNames(gr.alarm.Members))
				gr.alarm.Evidence = append(slices.Clone(gr.alarm.Evidence), record.Point{Time: now, Value: float64(len(gr.down))})
				a := gr.alarm
				a.Members = slices.Clone(a.Members)
				out = append(out, a)
			}
		}
	}
	return out
}

// take raises the held alarms of a severity, one each or into its group.
func (g *Grouper) take(sev string, held []string, active int) []record.Alarm {
	slices.SortFunc(held, func(a, b string) int {
		return cmpStart(g.down[a].alarm.Start, g.down[b].alarm.Start, a, b)
	})
	gr := g.groups[sev]
	if gr == nil && len(held)+active < GroupMin {
		var out []record.Alarm
		for _, k := range held {
			s := g.down[k]
			s.raised = true
			out = append(out, s.alarm)
		}
		return out
	}
	if gr == nil {
		gr = &downGroup{down: map[string]bool{}}
		gr.alarm = record.Alarm{Kind: record.Down, Target: GroupTarget, Direction: "both", Severity: sev, Start: g.down[held[0]].alarm.Start, Unit: "down"}
		g.groups[sev] = gr
	}
	for _, k := range held {
		s := g.down[k]
		s.raised, s.group = true, gr
		gr.down[k] = true
		gr.alarm.Members = append(gr.alarm.Members, s.alarm.Target)
	}
	return nil
}

// targets says "1 target", "12 targets".
func targets(n int) string {
	if n == 1 {
		return "1 target"
	}
	return fmt.Sprintf("%d targets", n)
}

// listNames lists the first groupNames names and how many more.
func listNames(names []string) string {
	if len(names) <= groupNames {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:groupNames], ", "), len(names)-groupNames)
}

func cmpStart(a, b time.Time, ak, bk string) int {
	if c := a.Compare(b); c != 0 {
		return c
	}
	return strings.Compare(ak, bk)
}
