package train

import (
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

// Send transmits one train. With gap == 0 the packets leave back to back in a
// single system call; otherwise packet i is handed to the kernel at
// start + i·gap, timed by spinning on the clock (sleeping is far too coarse at
// tens of microseconds). The intended spacing is only intent: receivers must
// use transmit timestamps to learn the spacing that really happened.
//
// It returns the user-space send time of every packet.
func Send(w Writer, pkts [][]byte, gap time.Duration, userNs []int64) ([]int64, error) {
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
		for time.Now().Before(due) {
		}
		t, err := w.Write(p)
		if err != nil {
			return userNs, fmt.Errorf("send packet %d of paced train: %w", i, err)
		}
		userNs = append(userNs, t)
	}
	return userNs, nil
}
