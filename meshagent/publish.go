package meshagent

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/hashicorp/serf/coordinate"

	"github.com/abing-net/abing/record"
)

// Observe takes the monitor's records: this node's links, its coordinates,
// the cycle.
func (a *Agent) Observe(recs []record.Record) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range recs {
		r := &recs[i]
		if r.Direction != "forward" || r.Node != a.cfg.Node || a.own[r.Path] == nil {
			continue
		}
		a.cycleSeen(r.Key(), now)
		if r.RTT == nil {
			a.routes.Unanswered(r.Path, r.Target, now)
			continue // no answer; a run that answered but could not estimate the bandwidth still has the RTT
		}
		l := Link{Peer: r.Target, RTT: r.RTT.Avg, Loss: r.Loss, Jitter: r.RTT.Jitter, ABW: r.ABW, DBC: r.DBC}
		if old, ok := a.own[r.Path][r.Target]; ok {
			l.Cost = old.Cost
		}
		if r.LinkCost != nil {
			l.Cost = *r.LinkCost
			a.dirty[r.Path][r.Target] = true // past its thresholds (or the first)
		}
		if checkLink(l) != nil {
			continue // nothing a record holds is out of range, but a row must never carry it
		}
		a.own[r.Path][r.Target] = l
		// Vivaldi on the minimum RTT of the run: the train's own queueing
		// lifts the others.
		if other, ok := a.view.Coordinate(r.Target, r.Path); ok && r.RTT.Min > 0 {
			c := a.clients[r.Path]
			if !a.guards[r.Path].admit(c.DistanceTo(other).Seconds(), r.RTT.Min/1000) {
				a.metrics.coordRefused.Inc()
				if now.Sub(a.coordWarned) >= time.Minute {
					a.coordWarned = now
					a.log.Warn("a peer's coordinate disagrees wildly with the RTT measured to it, while most peers' agree: not taken (logged once a minute)",
						"peer", r.Target, "path", r.Path, "predicted", c.DistanceTo(other).Round(time.Microsecond).String(), "rtt_ms", r.RTT.Min)
				}
			} else if _, err := c.Update(r.Target, other, time.Duration(r.RTT.Min*float64(time.Millisecond))); err == nil {
				a.iters[r.Path]++
			}
		}
	}
}

// cycleSeen notes a target measured, and logs a full cycle when every
// target has been. Under mu.
func (a *Agent) cycleSeen(key string, now time.Time) {
	if a.cycle.done == nil {
		a.cycle = cycle{start: now, done: map[string]bool{}}
	}
	a.cycle.done[key] = true
	want := a.wantTargets()
	for _, t := range want {
		if !a.cycle.done[t] {
			return
		}
	}
	level := slog.LevelDebug
	if len(want) != a.cycle.paths {
		level = slog.LevelInfo // the first, and when the members change
	}
	a.log.Log(context.Background(), level, "full cycle: every path of every member measured", "paths", len(want), "took", now.Sub(a.cycle.start).Round(time.Second).String())
	a.cycle = cycle{start: now, done: map[string]bool{}, paths: len(want)}
}

// publish sends this node's row: on each path, the links that changed
// past their thresholds and the coordinate if it moved (or the whole row
// when full), as parts under the event size, if the gossip budget admits
// them now; else nothing is sent and what changed waits for the next
// call. It says whether it sent (or had nothing to send).
func (a *Agent) publish(full bool, now time.Time) bool {
	outs, ok := a.collect(full, now)
	for _, o := range outs {
		a.view.Apply(&o.part, now)
		for _, b := range o.payloads {
			if err := a.serf.UserEvent(EventPrefix+a.cfg.Node, b, false); err != nil {
				a.log.Error("publishing the row", "path", o.part.Path, "err", err)
				break
			}
			a.metrics.published.Inc()
		}
	}
	return ok
}

// outgoing is a path's part to publish, as payloads.
type outgoing struct {
	part     Part
	payloads [][]byte
}

// collect is what publish sends, taken from the budget and marked as
// published; nothing (and false) when the budget does not admit it now.
func (a *Agent) collect(full bool, now time.Time) ([]outgoing, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var outs []outgoing
	n := 0
	for _, p := range a.set.Paths {
		part, ok := a.part(p.Name, full)
		if !ok {
			continue
		}
		payloads, err := Split(part, a.set.EventSize)
		if err != nil {
			a.log.Error("publishing the row", "err", err)
			continue
		}
		outs = append(outs, outgoing{part, payloads})
		n += len(payloads)
	}
	if full {
		a.budget.fullParts = n
	}
	if n == 0 {
		return nil, true
	}
	if !a.budget.allow(now, n) {
		a.metrics.deferred.Inc()
		return nil, false
	}
	for _, o := range outs {
		a.pubCoord[o.part.Path] = o.part.Coord
		for _, l := range o.part.Links {
			delete(a.dirty[o.part.Path], l.Peer)
		}
	}
	return outs, true
}

// part is what to publish of a path's row, if anything. Under mu.
func (a *Agent) part(path string, full bool) (Part, bool) {
	coord := a.clients[path].GetCoordinate()
	moved := a.pubCoord[path] == nil || displacement(a.pubCoord[path], coord) >= time.Duration(a.set.CoordMove).Seconds()
	var peers []string
	for peer := range a.own[path] {
		if full || a.dirty[path][peer] {
			peers = append(peers, peer)
		}
	}
	if !full && !moved && len(peers) == 0 {
		return Part{}, false
	}
	slices.Sort(peers)
	p := Part{Node: a.cfg.Node, Path: path, Coord: coord, Iter: a.iters[path]}
	for _, peer := range peers {
		p.Links = append(p.Links, a.own[path][peer])
	}
	return p, true
}

// displacement is how far a coordinate moved, in seconds of predicted RTT
// to any node at most: the vector's move plus the height's and the
// adjustment's changes. (DistanceTo would add both heights.)
func displacement(from, to *coordinate.Coordinate) float64 {
	var sq float64
	for i := range min(len(from.Vec), len(to.Vec)) {
		d := to.Vec[i] - from.Vec[i]
		sq += d * d
	}
	return math.Sqrt(sq) + math.Abs(to.Height-from.Height) + math.Abs(to.Adjustment-from.Adjustment)
}
