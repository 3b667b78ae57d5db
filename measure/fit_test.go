package measure

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/reflector"
	"github.com/abing-net/abing/reflector/reflectortest"
	"github.com/abing-net/abing/train"
)

// The budget a default reflector states (reflector.DefaultLimits, with its
// MaxTrainLen and MaxReplySpan).
var defaultBudget = train.Budget{Rate: 10e6, Burst: 1 << 20, PPS: 5000, PacketBurst: 2000, MaxTrainLen: 1024,
	PacedShare: 0.1, MaxReplySpan: int64(100 * time.Millisecond)}

func TestFit(t *testing.T) {
	jumboTrains := Defaults()
	jumboTrains.TrainLen, jumboTrains.Size = 10, 9000
	jumboTrains = jumboTrains.Fixed()
	jumbo := Defaults()
	jumbo.Size = 9000
	long := Defaults().Fixed()
	long.TrainLen = 20
	slow := defaultBudget
	slow.Rate, slow.Burst = 100e3, 10_000
	short := defaultBudget
	short.MaxTrainLen = 8
	for _, tc := range []struct {
		name string
		cfg  Config
		u    train.Budget
		// what must come out
		interval time.Duration // 0: unchanged
		maxBytes int           // 0: unchanged
		pacedLen int           // 0: unchanged
		note     string        // "" : none
		err      string
	}{
		{name: "default run, default reflector", cfg: Defaults(), u: defaultBudget},
		{name: "nothing stated", cfg: jumboTrains, u: train.Budget{}},
		{name: "a huge budget makes nothing larger", cfg: Defaults(), u: train.Budget{Rate: 1e12, Burst: 1 << 30, PPS: 1e9, PacketBurst: 1 << 30, MaxTrainLen: 60000, PacedShare: 1}},
		// 16 back-to-back and 16 paced trains of 10 jumbo frames: 2.88 MB
		// a direction, over the 1 MiB burst; the rest at 80 % of 10
		// Mbit/s takes 32 trains 64 ms apart.
		{name: "jumbo trains, the issue's example", cfg: jumboTrains, u: defaultBudget, interval: 64 * time.Millisecond, note: "trains 64ms apart"},
		// 200 jumbo frames would be 1.8 MB: cut to 80 % of the burst,
		// which still holds phase 1 and one round (738 KB).
		{name: "adaptive jumbo", cfg: jumbo, u: defaultBudget, maxBytes: 838860, note: "probe budget 838 KB a direction, not 1800"},
		{name: "trains over the reflector's longest", cfg: long, u: short, err: "train_len 20: the reflector accepts trains of at most 8"},
		{name: "paced trains over it", cfg: Defaults(), u: short, pacedLen: 8, note: "paced trains of 8 packets, not 10"},
		{name: "no run fits", cfg: jumboTrains, u: slow, err: "use fewer or smaller probes"},
	} {
		got, note, err := Fit(tc.cfg, tc.u)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		want := tc.cfg
		if tc.interval != 0 {
			want.Interval = tc.interval
		}
		if tc.maxBytes != 0 {
			want.MaxBytes = tc.maxBytes
		}
		if tc.pacedLen != 0 {
			want.PacedTrainLen = tc.pacedLen
		}
		if got.Interval.Round(time.Millisecond) != want.Interval || got.MaxBytes != want.MaxBytes ||
			got.PacedTrainLen != want.PacedTrainLen || got.Trains != want.Trains || got.TrainLen != want.TrainLen {
			t.Errorf("%s: fitted %+v, want %+v", tc.name, got, want)
		}
		if (tc.note == "") != (note == "") || !strings.Contains(note, tc.note) {
			t.Errorf("%s: note %q, want %q", tc.name, note, tc.note)
		}
		if got.Validate() != nil {
			t.Errorf("%s: fitted config invalid: %v", tc.name, got.Validate())
		}
	}
	var se *SettingError
	if _, _, err := Fit(long, short); !errors.As(err, &se) || se.Setting != "train_len" {
		t.Errorf("too long a train: %v, want a SettingError on train_len", err)
	}
}

func TestPacedInterval(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rgap     time.Duration
		trains   int
		interval time.Duration
		want     time.Duration
	}{
		// 20 Mbit/s: 15 trains of 9 gaps of 0.6 ms pace 81 ms, within the
		// 100 ms bucket and what refills while they go.
		{"20 Mbit/s", 600 * time.Microsecond, 15, 30 * time.Millisecond, 30 * time.Millisecond},
		// 10 Mbit/s: 162 ms of pacing, (162 − 80)/(0.8 · 0.1 · 15) = 68 ms
		// apart, the refill paying
		// for what the bucket does not hold.
		{"10 Mbit/s", 1200 * time.Microsecond, 15, 60 * time.Millisecond, 68333 * time.Microsecond},
		// 1 Mbit/s: each train paces 100 ms, the whole bucket; the run
		// would need 1.2 s between trains and gets MaxInterval.
		{"1 Mbit/s", 11 * time.Millisecond, 15, 600 * time.Millisecond, MaxInterval},
		{"nothing paced", 0, 15, 10 * time.Millisecond, 10 * time.Millisecond},
	} {
		if got := PacedInterval(defaultBudget, 10, tc.rgap, tc.trains, tc.interval).Truncate(time.Microsecond); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// 10 Mbit/s right after another run, 20 ms of the bucket left (what
	// the reflector says, Budget.PacedNow): (162 − 16)/(0.8 · 0.1 · 15) =
	// 121.7 ms apart; with more left than the bucket holds, the bucket.
	for _, c := range []struct {
		left time.Duration
		want time.Duration
	}{{20 * time.Millisecond, 121666 * time.Microsecond}, {time.Second, 68333 * time.Microsecond}, {time.Microsecond, 134999 * time.Microsecond}} {
		b := defaultBudget
		b.PacedNow = c.left
		if got := PacedInterval(b, 10, 1200*time.Microsecond, 15, 60*time.Millisecond).Truncate(time.Microsecond); got != c.want {
			t.Errorf("10 Mbit/s, %v left: %v, want %v", c.left, got, c.want)
		}
	}
	if got := PacedInterval(train.Budget{}, 10, time.Millisecond, 15, time.Millisecond); got != time.Millisecond {
		t.Errorf("no share stated: %v", got)
	}
}

// A run bigger than a reflector's budget for one address: with the budget
// stated in the cookie the sender spreads its trains and every one is
// answered; the same run against the same reflector with the budget cut
// out of the cookie (as an older reflector sends it) is refused.
func TestFitsReflectorBudget(t *testing.T) {
	rcfg := reflector.Config{Limits: reflector.DefaultLimits()}
	rcfg.Limits.Source = reflector.Budget{Rate: 4e6, Burst: 200_000, PPS: 5000, PacketBurst: 2000}
	cfg := Defaults().Fixed()
	cfg.TrainLen = 10 // 480 KB a direction, against a burst of 200 KB
	for _, stated := range []bool{true, false} {
		lie := func(h train.Header, b []byte) [][]byte {
			if h.Type == train.TypeCookie && !stated {
				b = b[:train.HeaderLen+train.CookieLen]
			}
			return [][]byte{b}
		}
		r := reflectortest.StartHostile(t, rcfg, lie)
		cfg.Target = r.String()
		res, err := Run(context.Background(), cfg)
		if !stated {
			if err == nil || !strings.Contains(err.Error(), "rate budget") {
				t.Errorf("budget not stated: err = %v, want a refusal over the rate budget", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("budget stated: %v", err)
		}
		// (480 − 160) KB over 80 % of 4 Mbit/s, spread over 32 trains.
		if len(res.Fitted) != 1 || !strings.Contains(res.Fitted[0], "trains 25ms apart") || res.Config.Interval != 25*time.Millisecond {
			t.Errorf("fitted %q, interval %v", res.Fitted, res.Config.Interval)
		}
		if res.Forward.Complete != 2*cfg.Trains || r.Server().Stats().Refusals != 0 {
			t.Errorf("%d of %d trains whole, %d refusals", res.Forward.Complete, 2*cfg.Trains, r.Server().Stats().Refusals)
		}
		if recs := res.Records(); !strings.HasPrefix(recs[0].Note, res.Fitted[0]) || !strings.Contains(res.Text(), "note: fitted to the reflector's budget") {
			t.Errorf("the note is not in the records and text: %q\n%s", recs[0].Note, res.Text())
		}
	}
}

// A reflector that states a budget too small for any run: the sender says
// so after the handshake instead of probing, and a stated train limit
// below a pair is ignored.
func TestHostileBudget(t *testing.T) {
	state := func(u train.Budget) reflectortest.Lie {
		return func(h train.Header, b []byte) [][]byte {
			if h.Type == train.TypeCookie && len(b) >= train.HeaderLen+train.CookieLen+train.BudgetLen {
				train.PutBudget(b, u)
			}
			return [][]byte{b}
		}
	}
	r := reflectortest.StartHostile(t, reflector.Config{}, state(train.Budget{Rate: 1e3, Burst: 1500, PPS: 1, PacketBurst: 1}))
	cfg := Defaults()
	cfg.Target = r.String()
	start := time.Now()
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "use fewer or smaller probes") || time.Since(start) > time.Second {
		t.Errorf("tiny budget: %v after %v", err, time.Since(start))
	}
	if st := r.Server().Stats(); st.Trains != 0 {
		t.Errorf("%d trains reached the reflector", st.Trains)
	}
	r = reflectortest.StartHostile(t, reflector.Config{}, state(train.Budget{MaxTrainLen: 1}))
	cfg.Target = r.String()
	if res, err := Run(context.Background(), cfg); err != nil || len(res.Fitted) != 0 {
		t.Errorf("train limit of 1: %v, fitted %q", err, res.Fitted)
	}
}
