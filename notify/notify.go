// Package notify delivers alarms: to a program (Command), to a webhook in
// Prometheus Alertmanager's format (Webhook), each through a Dispatcher
// that gives every hook a queue and a goroutine of its own. It only
// delivers: alarms come to it complete (detected by package alarms, their
// route attached by the monitor).
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/redact"
)

// Defaults of the hooks and the dispatcher.
const (
	DefaultCommandTimeout = 10 * time.Second // a command is killed after this
	DefaultPostTimeout    = 10 * time.Second // one webhook post
	DefaultAttempts       = 8                // webhook posts per alarm
	DefaultBackoff        = time.Second      // before the second post, doubling up to MaxBackoff
	MaxBackoff            = time.Minute
	DefaultQueue          = 1024 // alarms waiting per hook
)

// Hook is told of every alarm raised and cleared.
type Hook interface {
	Name() string
	Fire(ctx context.Context, a *record.Alarm) error
}

// Command runs a program for every alarm: the alarm as JSON on its
// standard input, and as ABING_ALARM_* environment variables (KIND, STATUS
// firing|resolved, TARGET, ADDRESS, DIRECTION, SEVERITY, START, END, BEFORE,
// AFTER, UNIT, SUMMARY, CLEARED, and LABEL_<NAME> for each label whose name
// is letters, digits and underscores). No shell is involved: Argv[0] is the
// program. It is killed after Timeout (zero: DefaultCommandTimeout).
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
		timeout = DefaultCommandTimeout
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
	for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
		if envName.MatchString(k) {
			env = append(env, "ABING_ALARM_LABEL_"+strings.ToUpper(k)+"="+a.Labels[k])
		}
	}
	return env
}

// envName is what a label's name must be to become a variable: letters,
// digits and underscores (the others are left out).
var envName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)

// Webhook posts every alarm to URL in the body format of Prometheus
// Alertmanager's webhook receiver, so that it plugs into alert routing
// that already exists. A failed post is retried with a doubling backoff
// (Backoff, up to MaxBackoff) Attempts times (zero: the defaults), except on a 4xx answer
// other than 429, which retrying would not mend.
type Webhook struct {
	URL      string
	Client   *http.Client // nil: DefaultPostTimeout per post
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
		client = &http.Client{Timeout: DefaultPostTimeout}
	}
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	if backoff <= 0 {
		backoff = DefaultBackoff
	}
	var last error
	for i := range attempts {
		if i > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: given up after %d attempts: %w", w.Name(), i, last)
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, MaxBackoff)
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
	record.Path: "AbingPathChange", record.Down: "AbingTargetDown", record.MeshRoute: "AbingMeshRouteChange"}

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

// DispatcherOptions configure a Dispatcher.
type DispatcherOptions struct {
	Hooks  []Hook
	Logger *slog.Logger
	// Queue bounds the alarms waiting per hook (1024); beyond it the
	// newest is dropped and logged.
	Queue int
}

// Dispatcher hands alarms to hooks in the background: Send never blocks,
// each hook has its own queue and goroutine, so a slow or failing hook
// delays neither the measurements nor the other hooks.
type Dispatcher struct {
	opts   DispatcherOptions
	queues []chan record.Alarm
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
}

// NewDispatcher starts the goroutines; Close stops them.
func NewDispatcher(o DispatcherOptions) *Dispatcher {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{opts: o, ctx: ctx, cancel: cancel}
	for _, h := range o.Hooks {
		q := make(chan record.Alarm, o.Queue)
		d.queues = append(d.queues, q)
		d.wg.Add(1)
		go d.fire(h, q)
	}
	return d
}

// Send queues an alarm for every hook and returns at once.
func (d *Dispatcher) Send(a record.Alarm) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	for i, q := range d.queues {
		select {
		case q <- a:
		default:
			d.opts.Logger.Error("alarm hook: queue full, alarm dropped", "hook", d.opts.Hooks[i].Name(), "kind", a.Kind, "target", a.Target)
		}
	}
}

func (d *Dispatcher) fire(h Hook, q <-chan record.Alarm) {
	defer d.wg.Done()
	for a := range q {
		if err := h.Fire(d.ctx, &a); err != nil {
			d.opts.Logger.Error("alarm hook failed", "hook", h.Name(), "kind", a.Kind, "target", a.Target, "status", a.Status(), "err", err)
		} else {
			d.opts.Logger.Info("alarm hook done", "hook", h.Name(), "kind", a.Kind, "target", a.Target, "status", a.Status())
		}
	}
}

// Close stops taking alarms, gives the queued ones up to grace to be
// delivered, then cancels what is still running (retries included).
func (d *Dispatcher) Close(grace time.Duration) error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		for _, q := range d.queues {
			close(q)
		}
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
