package auth

import "time"

// Fresh says whether a datagram stamped sentNs by its sender (ns since the
// Unix epoch) is within window of now, either way: older datagrams may be
// replays of a session the reflector has already forgotten.
func Fresh(sentNs int64, now time.Time, window time.Duration) bool {
	d := now.UnixNano() - sentNs
	return d <= int64(window) && d >= -int64(window)
}

// WindowSize is how far behind the highest sequence number seen a datagram
// may arrive and still be accepted once.
const WindowSize = 1024

// Window accepts each sequence number of a session at most once, within
// WindowSize of the highest seen (the sliding window of IPsec, RFC 4303).
type Window struct {
	top  uint32
	seen [WindowSize / 64]uint64
	any  bool
}

// Accept records seq and says whether it was new.
func (w *Window) Accept(seq uint32) bool {
	if !w.any {
		w.any, w.top = true, seq
		w.set(seq)
		return true
	}
	if d := int64(seq) - int64(w.top); d > 0 {
		if d >= WindowSize {
			clear(w.seen[:])
		} else {
			for s := w.top + 1; s != seq; s++ {
				w.unset(s)
			}
		}
		w.top = seq
		w.set(seq)
		return true
	} else if -d >= WindowSize {
		return false
	}
	if w.has(seq) {
		return false
	}
	w.set(seq)
	return true
}

func (w *Window) set(s uint32)      { w.seen[s/64%(WindowSize/64)] |= 1 << (s % 64) }
func (w *Window) unset(s uint32)    { w.seen[s/64%(WindowSize/64)] &^= 1 << (s % 64) }
func (w *Window) has(s uint32) bool { return w.seen[s/64%(WindowSize/64)]&(1<<(s%64)) != 0 }
