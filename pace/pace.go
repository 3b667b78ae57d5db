// Package pace hands a train of datagrams to the kernel: back to back in one
// system call, or paced at a given spacing.
package pace

import (
	"context"
	"fmt"
	"time"
)

// Writer sends datagrams to one peer. WriteBatch must hand the whole batch to
// the kernel in one system call (sendmmsg), so that the scheduler cannot split
// a back-to-back train. Both return the user-space time taken just before the
// system call, in ns since the Unix epoch.
type Writer interface {
	WriteBatch(pkts [][]byte) (userNs int64, err error)
	Write(pkt []byte) (userNs int64, err error)
}

// spinFor is how close to a packet's due time Send stops sleeping and spins:
// Go's timers wake up to about a millisecond late on these machines, so
// gaps up to 2 ms (paths down to 6 Mbit/s at 1500 bytes) are spun as
// before, and only longer ones sleep most of the way.
const spinFor = 2 * time.Millisecond

// Send transmits one train. With gap == 0 the packets leave back to back in a
// single system call; otherwise packet i is handed to the kernel at
// start + i·gap, timed by sleeping until spinFor before it and spinning on
// the clock for the rest. The intended spacing is only intent: receivers must
// use transmit timestamps to learn the spacing that really happened. When
// ctx ends during a paced train, Send stops and returns ctx's error.
//
// It returns the user-space send time of every packet sent.
func Send(ctx context.Context, w Writer, pkts [][]byte, gap time.Duration, userNs []int64) ([]int64, error) {
	userNs = userNs[:0]
	if gap <= 0 {
		t, err := w.WriteBatch(pkts)
		if err != nil {
			return userNs, fmt.Errorf("send train of %d: %w", len(pkts), err)
		}
		for range pkts {
			userNs = append(userNs, t)
		}
		return userNs, nil
	}
	start := time.Now()
	for i, p := range pkts {
		due := start.Add(time.Duration(i) * gap)
		if d := time.Until(due) - spinFor; d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return userNs, fmt.Errorf("paced train stopped at packet %d: %w", i, ctx.Err())
			case <-t.C:
			}
		}
		for time.Now().Before(due) {
		}
		if err := ctx.Err(); err != nil {
			return userNs, fmt.Errorf("paced train stopped at packet %d: %w", i, err)
		}
		t, err := w.Write(p)
		if err != nil {
			return userNs, fmt.Errorf("send packet %d of paced train: %w", i, err)
		}
		userNs = append(userNs, t)
	}
	return userNs, nil
}
