//go:build linux

package accuracy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/internal/testenv"
	"github.com/abing-net/abing/lab/testbed"
	"github.com/abing-net/abing/measure"
	"github.com/abing-net/abing/reflector"
	"github.com/abing-net/abing/train"
)

// Env is a testbed with a running reflector and calibrated bottlenecks.
type Env struct {
	TB          *testbed.Testbed
	Calibration [2]testbed.Calibration // by testbed.Direction
	Reflector   *reflector.Server
	target      netip.AddrPort
	stop        func() error
}

// Setup builds a path (nominal rates, probe size, delay), starts a
// reflector in it and calibrates both directions.
func Setup(ctx context.Context, path testbed.Config) (*Env, error) {
	tb, err := testbed.New(ctx, path)
	if err != nil {
		return nil, err
	}
	e := &Env{TB: tb, target: netip.AddrPortFrom(testbed.ReflectorAddr, train.DefaultPort)}
	if err := e.startReflector(); err != nil {
		e.Close()
		return nil, err
	}
	for _, d := range []testbed.Direction{testbed.Forward, testbed.Reverse} {
		if err := e.Recalibrate(ctx, d); err != nil {
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

// Recalibrate measures direction d's capacity again.
func (e *Env) Recalibrate(ctx context.Context, d testbed.Direction) error {
	c, err := e.TB.Calibrate(ctx, d)
	if err != nil {
		return err
	}
	e.Calibration[d] = c
	return nil
}

func (e *Env) startReflector() error {
	srv, stop, err := e.StartReflector(train.DefaultPort, LabLimits())
	if err != nil {
		return err
	}
	e.Reflector, e.stop = srv, stop
	return nil
}

// LabLimits are the budgets of the environment's own reflector: the
// accuracy grid sends far more than a default run, so the per-source
// budget is lifted, so that it measures the estimator, not the limiter.
func LabLimits() reflector.Limits {
	lim := reflector.DefaultLimits()
	lim.Source, lim.Prefix, lim.PacedShare = lim.Global, lim.Global, 1
	return lim
}

// StartReflector starts a reflector with the budgets lim in the
// reflector's namespace on port; stop ends it and returns what Serve
// returned. The environment's own reflector is on train.DefaultPort, with
// LabLimits.
func (e *Env) StartReflector(port int, lim reflector.Limits) (srv *reflector.Server, stop func() error, err error) {
	var conn *dispersion.Conn
	err = e.TB.Reflector.Do(func() (err error) {
		conn, err = dispersion.Listen("udp", fmt.Sprintf(":%d", port), dispersion.Options{})
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("reflector: %w", err)
	}
	srv, err = reflector.New(conn, reflector.Config{Limits: lim})
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ctx)
		conn.Close()
		done <- err
	}()
	var once sync.Once
	var serr error
	return srv, func() error {
		once.Do(func() { cancel(); serr = <-done })
		return serr
	}, nil
}

// StartSTAMP starts the environment's reflector answering STAMP (stateless)
// on port too, sharing its budgets; stop ends that loop.
func (e *Env) StartSTAMP(port int) (addr netip.AddrPort, stop func() error, err error) {
	var conn *dispersion.Conn
	err = e.TB.Reflector.Do(func() (err error) {
		conn, err = dispersion.Listen("udp", fmt.Sprintf(":%d", port), dispersion.Options{})
		return err
	})
	if err != nil {
		return addr, nil, fmt.Errorf("STAMP reflector: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := e.Reflector.STAMP(conn, false).Serve(ctx)
		conn.Close()
		done <- err
	}()
	var once sync.Once
	var serr error
	return netip.AddrPortFrom(testbed.ReflectorAddr, uint16(port)), func() error {
		once.Do(func() { cancel(); serr = <-done })
		return serr
	}, nil
}

// Target is the reflector's address in the testbed.
func (e *Env) Target() netip.AddrPort { return e.target }

// Bind opens sockets in the sender's namespace, for measure.Config.Bind.
func (e *Env) Bind(network, addr string, opts dispersion.Options) (*dispersion.Conn, error) {
	var c *dispersion.Conn
	err := e.TB.Sender.Do(func() (err error) {
		c, err = dispersion.Listen(network, addr, opts)
		return err
	})
	return c, err
}

// Close stops the reflector and tears the testbed down.
func (e *Env) Close() error {
	var err error
	if e.stop != nil {
		err = e.stop()
	}
	return errors.Join(err, e.TB.Close())
}

// Truth is what one direction of the path really did during a measurement.
type Truth struct {
	Nominal  float64 // bit/s asked of tc
	Capacity float64 // calibrated, bit/s
	XTR      float64 // cross traffic forwarded, bit/s
	ABW      float64 // Capacity − XTR
}

// Outcome is a measurement with its truth.
type Outcome struct {
	Result *measure.Result
	Truth  [2]Truth // by testbed.Direction
	Window time.Duration
}

// Measure runs one measurement with cfg (Bind is filled in, and Target
// unless given) while flows run, and computes the truth from the router's
// counters.
func (e *Env) Measure(ctx context.Context, cfg measure.Config, flows []testbed.Flow) (*Outcome, error) {
	if cfg.Target == "" {
		cfg.Target = e.target.String()
	}
	cfg.Bind = e.Bind
	var running []*testbed.Traffic
	defer func() {
		for _, t := range running {
			t.Stop()
		}
	}()
	for _, f := range flows {
		t, err := e.TB.StartTraffic(ctx, f)
		if err != nil {
			return nil, err
		}
		running = append(running, t)
	}
	if len(flows) > 0 { // let queues and TCP settle
		if err := testenv.Sleep(ctx, 500*time.Millisecond); err != nil {
			return nil, err
		}
	}
	var before [2]testbed.Counters
	var err error
	for d := range before {
		if before[d], err = e.TB.Counters(ctx, testbed.Direction(d)); err != nil {
			return nil, err
		}
	}
	t0 := time.Now()
	res, merr := measure.Run(ctx, cfg)
	t1 := time.Now()
	var after [2]testbed.Counters
	for d := range after {
		if after[d], err = e.TB.Counters(ctx, testbed.Direction(d)); err != nil {
			return nil, err
		}
	}
	for _, t := range running {
		if err := t.Stop(); err != nil {
			return nil, err
		}
	}
	running = nil
	if merr != nil {
		return nil, merr
	}
	out := &Outcome{Result: res, Window: t1.Sub(t0)}
	for d := range out.Truth {
		dir := &res.Forward
		if d == int(testbed.Reverse) {
			dir = &res.Reverse
		}
		probe := uint64((dir.Packets - dir.Lost) * cfg.Size)
		fwd := after[d].Sub(before[d]).IPBytes()
		cross := float64(0)
		if fwd > probe {
			cross = float64(fwd-probe) * 8 / out.Window.Seconds()
		}
		c := e.Calibration[d].Capacity
		out.Truth[d] = Truth{Nominal: e.Calibration[d].Nominal, Capacity: c, XTR: cross, ABW: max(0, c-cross)}
	}
	return out, nil
}
