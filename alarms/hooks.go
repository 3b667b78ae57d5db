package alarms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/abing-net/abing/record"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/abing-net/abing/redact"
)

// Hook is told of every alarm raised and cleared.
type Hook interface {
	Name() string
	Fire(ctx context.Context, a *record.Alarm) error
}

// Command runs a program for every alarm: the alarm as JSON on its
// standard input, and as ABING_ALARM_* environment variables (KIND, STATUS
// firing|resolved, TARGET, ADDRESS, DIRECTION, SEVERITY, START, END, BEFORE,
// AFTER, UNIT, SUMMARY, CLEARED). No shell is involved: Argv[0] is the
// program. It is killed after Timeout (10s).
type Command struct {
	Argv    []string
	Timeout time.Duration
}

// Name is the program.
func (c *Command) Name() string { return "command " + c.Argv[0] }

// Fire runs the program and waits for it; its output, if any, goes into
// the error when it fails.
func (c *Command) Fire(ctx context.Context, a *record.Alarm) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	js, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("%s: %w", c.Name(), err)
	}
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Stdin = bytes.NewReader(append(js, '\n'))
	cmd.Env = append(os.Environ(), Env(a)...)
	cmd.WaitDelay = time.Second // a child that keeps the pipes open does not hold us
	out, err := cmd.CombinedOutput()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%s: killed after %s", c.Name(), timeout)
	}
	if err != nil {
		return fmt.Errorf("%s: %w: %s", c.Name(), err, strings.TrimSpace(string(out[:min(len(out), 500)])))
	}
	return nil
}

// Env is an alarm as environment variables.
func Env(a *record.Alarm) []string {
	env := []string{
		"ABING_ALARM_KIND=" + string(a.Kind),
		"ABING_ALARM_STATUS=" + a.Status(),
		"ABING_ALARM_TARGET=" + a.Target,
		"ABING_ALARM_ADDRESS=" + a.Address,
		"ABING_ALARM_DIRECTION=" + a.Direction,
		"ABING_ALARM_SEVERITY=" + a.Severity,
		"ABING_ALARM_START=" + a.Start.UTC().Format(time.RFC3339Nano),
		"ABING_ALARM_BEFORE=" + strconv.FormatFloat(a.Before, 'f', -1, 64),
		"ABING_ALARM_AFTER=" + strconv.FormatFloat(a.After, 'f', -1, 64),
		"ABING_ALARM_UNIT=" + a.Unit,
		"ABING_ALARM_SUMMARY=" + a.Summary,
	}
	if a.End != nil {
		env = append(env, "ABING_ALARM_END="+a.End.UTC().Format(time.RFC3339Nano), "ABING_ALARM_CLEARED="+a.Cleared)
	}
	return env
}

// Webhook posts every alarm to URL in the body format of Prometheus
// Alertmanager's webhook receiver, so that it plugs into alert routing
// that already exists. A failed post is retried with a doubling backoff
// (Backoff, 1s, up to a minute) Attempts times (8), except on a 4xx answer
// other than 429, which retrying would not mend.
type Webhook struct {
	URL      string
	Client   *http.Client // nil: 10 s timeout per post
	Attempts int
	Backoff  time.Duration
}

// Name is the URL, redacted: a webhook's path often is its secret.
func (w *Webhook) Name() string { return "webhook " + redact.URL(w.URL) }

// Fire posts the alarm, retrying as documented.
func (w *Webhook) Fire(ctx context.Context, a *record.Alarm) error {
	body, err := json.Marshal(AlertmanagerMessage(a))
	if err != nil {
		return fmt.Errorf("%s: %w", w.Name(), err)
	}
	client, attempts, backoff := w.Client, w.Attempts, w.Backoff
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if attempts <= 0 {
		attempts = 8
	}
	if backoff <= 0 {
		backoff = time.Second
	}
	var last error
	for i := range attempts {
		if i > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: given up after %d attempts: %w", w.Name(), i, last)
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Minute)
		}
		retry, err := w.post(ctx, client, body)
		if err == nil {
			return nil
		}
		last = redact.Error(err, w.URL) // errors of net/http quote the URL
		if !retry {
			break
		}
	}
	return fmt.Errorf("%s: %w", w.Name(), last)
}

func (w *Webhook) post(ctx context.Context, client *http.Client, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "abing")
	resp, err := client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	err = fmt.Errorf("HTTP %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	return resp.StatusCode/100 != 4 || resp.StatusCode == http.StatusTooManyRequests, err
}

// AMMessage is the body Alertmanager posts to webhook receivers (version 4).
type AMMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []AMAlert         `json:"alerts"`
}

// AMAlert is one alert of an AMMessage.
type AMAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"` // zero while firing, as Alertmanager sends it
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// alertNames are the alertname labels of the kinds.
var alertNames = map[record.Kind]string{record.Capacity: "AbingCapacityChange", record.Load: "AbingHeavyLoad", record.Latency: "AbingLatencyChange",
	record.Path: "AbingPathChange", record.Down: "AbingTargetDown"}

// AlertmanagerMessage is an alarm as an Alertmanager webhook body with one
// alert. Labels: alertname, kind, target, direction, severity and the
// target's own labels (which never override those). Annotations: summary,
// before, after, unit, cleared, and the traceroutes when there are any.
// The fingerprint is a hash of the labels, as Alertmanager's is, so the
// raise and the clear of an episode share it.
func AlertmanagerMessage(a *record.Alarm) AMMessage {
	labels := map[string]string{}
	for k, v := range a.Labels {
		labels[k] = v
	}
	for k, v := range map[string]string{"alertname": alertNames[a.Kind], "kind": string(a.Kind), "target": a.Target,
		"direction": a.Direction, "severity": a.Severity} {
		labels[k] = v
	}
	ann := map[string]string{"summary": a.Summary, "before": strconv.FormatFloat(a.Before, 'f', -1, 64),
		"after": strconv.FormatFloat(a.After, 'f', -1, 64), "unit": a.Unit}
	if a.Cleared != "" {
		ann["cleared"] = a.Cleared
	}
	if a.Route != nil {
		ann["route_before"], ann["route_after"] = a.Route.Before.String(), a.Route.After.String()
	}
	alert := AMAlert{Status: a.Status(), Labels: labels, Annotations: ann, StartsAt: a.Start.UTC(),
		Fingerprint: fingerprint(labels)}
	if a.End != nil {
		alert.EndsAt = a.End.UTC()
	}
	group := map[string]string{"alertname": labels["alertname"], "target": a.Target}
	return AMMessage{Version: "4", Status: alert.Status, Receiver: "abing", GroupKey: "{}:" + fingerprint(group),
		GroupLabels: group, CommonLabels: labels, CommonAnnotations: ann, Alerts: []AMAlert{alert}}
}

func fingerprint(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := fnv.New64a()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0xff})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// Tracer runs a traceroute to a host. Trace may be called from two
// goroutines at once (a target's first traceroute and an alarm's).
type Tracer interface {
	Trace(ctx context.Context, host string) *record.Trace
}

// DispatcherOptions configure a Dispatcher.
type DispatcherOptions struct {
	Hooks  []Hook
	Tracer Tracer // nil: no traceroutes
	Logger *slog.Logger
	// Traced, if set, is called with an alarm once its traceroutes are
	// attached (to store it again).
	Traced func(record.Alarm)
	// Queue bounds the alarms waiting per hook (1024); beyond it the
	// newest is dropped and logged.
	Queue int
}

// Dispatcher hands alarms to hooks in the background: Send never blocks,
// each hook has its own queue and goroutine, so a slow or failing hook
// delays neither the measurements nor the other hooks. Path and capacity
// alarms get a traceroute first when a Tracer is set.
type Dispatcher struct {
	o      DispatcherOptions
	in     chan job
	watch  chan job // baseline traceroutes to take, on a worker of their own
	queues []chan record.Alarm
	traces map[string]*traces // per target; owned by the enrich goroutine
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	baseWG sync.WaitGroup // the baselines worker
	// baseCtx ends the baselines' traceroutes as Close begins.
	baseCtx     context.Context
	baseCancel  context.CancelFunc
	mu          sync.Mutex
	closed      bool
	watchClosed bool
}

// job is an alarm, or a target's first traceroute (asked for: host; taken:
// trace).
type job struct {
	alarm        *record.Alarm
	target, host string
	trace        *record.Trace
}

// NewDispatcher starts the goroutines; Close stops them.
func NewDispatcher(o DispatcherOptions) *Dispatcher {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Queue <= 0 {
		o.Queue = 1024
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{o: o, in: make(chan job, o.Queue), watch: make(chan job, o.Queue), traces: map[string]*traces{}, ctx: ctx, cancel: cancel}
	d.baseCtx, d.baseCancel = context.WithCancel(ctx)
	for _, h := range o.Hooks {
		q := make(chan record.Alarm, o.Queue)
		d.queues = append(d.queues, q)
		d.wg.Add(1)
		go d.fire(h, q)
	}
	d.wg.Add(1)
	go d.enrich()
	if o.Tracer != nil {
		d.baseWG.Add(1)
		go d.baselines()
	}
	return d
}

// baselines takes the first traceroute of each watched target, one at a
// time, apart from the alarms: a hundred targets starting together must not
// hold the first alarm back behind a hundred traceroutes.
func (d *Dispatcher) baselines() {
	defer d.baseWG.Done()
	for j := range d.watch {
		if d.baseCtx.Err() != nil {
			continue // closing: drain
		}
		j.trace = d.o.Tracer.Trace(d.baseCtx, j.host)
		d.put(j)
	}
}

// Send queues an alarm for the hooks and returns at once.
func (d *Dispatcher) Send(a record.Alarm) { d.put(job{alarm: &a}) }

// Watch asks for a first traceroute of a target, the "before" of its first
// path or capacity alarm. Without a Tracer it does nothing.
func (d *Dispatcher) Watch(target, host string) {
	if d.o.Tracer == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.watchClosed {
		return
	}
	select {
	case d.watch <- job{target: target, host: host}:
	default:
		d.o.Logger.Warn("alarm hooks: too many first traceroutes waiting; this target's is skipped", "target", target)
	}
}

func (d *Dispatcher) put(j job) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	select {
	case d.in <- j:
	default:
		d.o.Logger.Error("alarm hooks: queue full, alarm dropped", "target", j.target)
	}
}

func (d *Dispatcher) enrich() {
	defer d.wg.Done()
	defer func() {
		for _, q := range d.queues {
			close(q)
		}
	}()
	for j := range d.in {
		if j.alarm == nil { // a first traceroute, taken by baselines
			if _, ok := d.traces[j.target]; !ok {
				d.traces[j.target] = &traces{after: j.trace} // old enough to be traced anew
			}
			continue
		}
		a := *j.alarm
		if d.o.Tracer != nil && (a.Kind == record.Path || a.Kind == record.Capacity) {
			a.Route = d.route(&a)
			if d.o.Traced != nil {
				d.o.Traced(a)
			}
		}
		for i, q := range d.queues {
			select {
			case q <- a:
			default:
				d.o.Logger.Error("alarm hook: queue full, alarm dropped", "hook", d.o.Hooks[i].Name(), "kind", a.Kind, "target", a.Target)
			}
		}
	}
}

// shareTrace is how long a traceroute serves the alarms of a target of the
// same kind and status that come after it: the forward and reverse alarms
// of one route change come together, and a second traceroute right after
// the first would mostly meet ICMP rate limits.
const shareTrace = 30 * time.Second

// route returns the hop lists before and after for alarm a, tracing anew
// unless the last traceroute was for the other direction of the same
// change.
func (d *Dispatcher) route(a *record.Alarm) *record.Route {
	st := d.traces[a.Target]
	if st == nil {
		st = &traces{}
		d.traces[a.Target] = st
	}
	why := string(a.Kind) + " " + a.Status()
	if st.after == nil || st.why != why || time.Since(st.taken) > shareTrace {
		st.before, st.after = st.after, d.o.Tracer.Trace(d.ctx, Host(a.Address))
		st.taken, st.why = time.Now(), why
	}
	return &record.Route{Before: st.before, After: st.after}
}

// traces are a target's last two traceroutes, and why the last was taken.
type traces struct {
	before, after *record.Trace
	taken         time.Time
	why           string
}

func (d *Dispatcher) fire(h Hook, q <-chan record.Alarm) {
	defer d.wg.Done()
	for a := range q {
		if err := h.Fire(d.ctx, &a); err != nil {
			d.o.Logger.Error("alarm hook failed", "hook", h.Name(), "kind", a.Kind, "target", a.Target, "status", a.Status(), "err", err)
		} else {
			d.o.Logger.Info("alarm hook done", "hook", h.Name(), "kind", a.Kind, "target", a.Target, "status", a.Status())
		}
	}
}

// Close stops taking alarms, gives the queued ones up to grace to be
// delivered, then cancels what is still running (retries included).
func (d *Dispatcher) Close(grace time.Duration) error {
	// First traceroutes still to take are not worth waiting for.
	d.mu.Lock()
	closing := !d.closed && !d.watchClosed
	if closing {
		d.watchClosed = true
		close(d.watch)
	}
	d.mu.Unlock()
	d.baseCancel()
	d.baseWG.Wait()
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.in)
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		d.cancel()
		return nil
	case <-time.After(grace):
		d.cancel()
		<-done
		return errors.New("alarm hooks: some alarms were not delivered before shutdown")
	}
}

// Host is the host part of a "host:port" address (or the address itself).
func Host(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
