package reflector

import (
	"container/list"
	"net/netip"
	"time"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/train"
)

type sessionKey struct {
	src netip.AddrPort
	id  uint64
}

// slot is what the reflector keeps of one arrived request packet.
type slot struct {
	rx   int64 // receive time, ns
	seq  uint32
	size uint16 // UDP payload bytes
	ttl  uint8
	src  uint8 // receive timestamp source
}

// slotSize is the memory a slot takes, for the session memory budget.
const slotSize = 16

// stampSize is the memory a transmit stamp takes.
const stampSize = 16

type pendingTrain struct {
	s        *session
	index    uint32
	gap      uint32
	flags    uint16
	slots    []slot
	arrived  int
	deadline time.Time
	elem     *list.Element // in Server.pending
}

type session struct {
	key          sessionKey
	source       *bucket // the source's budget (or the table's overflow bucket)
	prefix       *bucket // the prefix's budget, likewise
	last         time.Time
	local        netip.Addr // our address its last datagram came to: answers go from there
	keyName      string     // with keys: the key its datagrams are signed with, which signs ours
	active       bool       // counted against the caps, may hold memory
	window       auth.Window
	pending      map[uint32]*pendingTrain
	pendingSlots int
	stamps       []train.TxStamp // guarded by Server.mu
}

func (ss *session) addPending(t *pendingTrain) {
	if ss.pending == nil {
		ss.pending = map[uint32]*pendingTrain{}
	}
	ss.pending[t.index] = t
	ss.pendingSlots += len(t.slots)
}

func (ss *session) removePending(t *pendingTrain) {
	delete(ss.pending, t.index)
	ss.pendingSlots -= len(t.slots)
}

// pendingList holds every train being assembled, earliest deadline first.
// A train's deadline only moves later, to now + TrainTimeout, so moving it
// to the back keeps the order: finding the next deadline is O(1).
type pendingList struct{ l list.List }

func (p *pendingList) init() { p.l.Init() }

func (p *pendingList) touch(t *pendingTrain, deadline time.Time) {
	t.deadline = deadline
	if t.elem == nil {
		t.elem = p.l.PushBack(t)
	} else {
		p.l.MoveToBack(t.elem)
	}
}

func (p *pendingList) remove(t *pendingTrain) {
	if t.elem != nil {
		p.l.Remove(t.elem)
		t.elem = nil
	}
}

// next is the earliest deadline, or limit if that is earlier.
func (p *pendingList) next(limit time.Time) time.Time {
	if f := p.l.Front(); f != nil {
		if d := f.Value.(*pendingTrain).deadline; d.Before(limit) {
			return d
		}
	}
	return limit
}

// expired returns a train whose deadline has passed, or nil.
func (p *pendingList) expired(now time.Time) *pendingTrain {
	if f := p.l.Front(); f != nil {
		if t := f.Value.(*pendingTrain); now.After(t.deadline) {
			return t
		}
	}
	return nil
}

// txRing maps the kernel's transmit keys to the stamps they fill: a fixed
// ring, so keys whose stamps never come (user-space stamps, or an error
// queue overflow) are overwritten rather than kept forever.
type txRing [txRingSize]txRef

const txRingSize = 1 << 14

type txRef struct {
	key   uint32
	s     *session
	idx   int
	valid bool
}

func (r *txRing) put(key uint32, s *session, idx int) {
	r[key%txRingSize] = txRef{key: key, s: s, idx: idx, valid: true}
}

func (r *txRing) take(key uint32) (txRef, bool) {
	e := &r[key%txRingSize]
	if !e.valid || e.key != key {
		return txRef{}, false
	}
	ref := *e
	*e = txRef{}
	return ref, true
}
