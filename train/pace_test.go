package train

import (
	"context"
	"errors"
	"testing"
	"time"
)

type recorder struct {
	batches [][]int64
	times   []int64
}

func (r *recorder) WriteBatch(p [][]byte) (int64, error) {
	now := time.Now().UnixNano()
	r.batches = append(r.batches, []int64{int64(len(p))})
	return now, nil
}

func (r *recorder) Write(p []byte) (int64, error) {
	now := time.Now().UnixNano()
	r.times = append(r.times, now)
	return now, nil
}

func TestSend(t *testing.T) {
	pkts := [][]byte{{1}, {2}, {3}}
	var r recorder
	ctx := context.Background()
	user, err := Send(ctx, &r, pkts, 0, time.Time{}, nil)
	if err != nil || len(r.batches) != 1 || len(user) != 3 || len(r.times) != 0 {
		t.Fatalf("back to back: %d batches, %d user times, %v", len(r.batches), len(user), err)
	}
	gap := 200 * time.Microsecond
	t0 := time.Now().UnixNano()
	user, err = Send(ctx, &r, pkts, gap, time.Time{}, user)
	if err != nil || len(r.times) != 3 || len(user) != 3 {
		t.Fatalf("paced: %d writes, %v", len(r.times), err)
	}
	// Packet i leaves no earlier than i gaps after the call: the schedule
	// is kept on absolute times, so a packet delayed by the scheduler is
	// followed sooner, and the gaps between two writes prove nothing on a
	// busy machine (this test once read 177 µs for 200 so).
	for i := 1; i < 3; i++ {
		if d := time.Duration(r.times[i] - t0); d < time.Duration(i)*gap {
			t.Errorf("packet %d sent %v after the call, before its time %v", i, d, time.Duration(i)*gap)
		}
	}
	// A train paced a second apart stops as soon as its context ends,
	// having slept, not spun.
	ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	user, err = Send(ctx, &r, pkts, time.Second, time.Time{}, user)
	if !errors.Is(err, context.DeadlineExceeded) || len(user) != 1 || time.Since(start) > 200*time.Millisecond {
		t.Errorf("cancelled train: %d sent, %v after %v", len(user), err, time.Since(start))
	}
}
