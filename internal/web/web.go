// Package web serves a daemon's web listener: /metrics (Prometheus),
// /healthz and the handlers the daemon adds (its page and JSON API), with
// the timeouts, connection caps and headers that keep a web client from
// slowing or stopping the daemon's measurements, and TLS and basic
// authentication from a Prometheus exporter web configuration file.
package web

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v3"

	"github.com/abing-net/abing/internal/connlimit"
)

// Config is how a listener treats its clients. Defaults gives the values
// the daemons use.
type Config struct {
	// ReadHeaderTimeout bounds a request's header, ReadTimeout the whole
	// request, WriteTimeout the answer (from the end of the header), and
	// IdleTimeout a keep-alive connection between requests.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
	// MaxConns bounds the connections held at once, MaxConnsPerSource
	// those of one client address; beyond either, the connection idle
	// longest is closed to make room (package internal/connlimit).
	MaxConns, MaxConnsPerSource int
	// ConfigFile is a Prometheus exporter web configuration file
	// (github.com/prometheus/exporter-toolkit: TLS, basic authentication);
	// "" serves plain HTTP to anyone who can connect.
	ConfigFile string
}

// Defaults are the listener's settings. The caps leave the descriptors to
// the measurements, the store and the hooks: a daemon holds at most 256
// web connections, a fraction of any descriptor limit (Go raises the soft
// limit to the hard one, 1024 at the very least), and a client that opens
// thousands only evicts its own idle ones. An answer of the API takes
// milliseconds to compute; 30 s of writing is for a slow link, not a
// stalled reader.
func Defaults() Config {
	return Config{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		MaxConns:          256,
		MaxConnsPerSource: 64,
	}
}

// Options are what a listener serves.
type Options struct {
	Registry *prometheus.Registry
	// Health makes /healthz say "ok" while it returns nil (nil: always),
	// and 503 with {"status":"unhealthy","reason":"..."} otherwise.
	Health func() error
	// Handlers are the daemon's own routes (http.ServeMux patterns).
	Handlers map[string]http.Handler
	Log      *slog.Logger
	Config   Config
}

// Registry returns a registry holding cs and the Go and process
// collectors.
func Registry(cs ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(cs...)
	return reg
}

// Server is a running listener.
type Server struct {
	hs   *http.Server
	lim  *connlimit.Listener
	addr string
	tls  bool
	done chan struct{}
}

// URL is where path is served, e.g. "https://127.0.0.1:9817/metrics".
func (s *Server) URL(path string) string {
	if s.tls {
		return "https://" + s.addr + path
	}
	return "http://" + s.addr + path
}

// Serve answers /metrics, /healthz and opts.Handlers on l, in the
// background, until Close. A configuration file that does not load is an
// error here, not at the first request. Off loopback without a
// configuration file it warns that anyone who can connect reads the page
// and the API.
func Serve(l net.Listener, opts Options) (*Server, error) {
	cfg, log := opts.Config, opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	secure := false
	if cfg.ConfigFile != "" {
		if err := web.Validate(cfg.ConfigFile); err != nil {
			return nil, fmt.Errorf("web configuration %s: %w", cfg.ConfigFile, err)
		}
		var err error
		if secure, err = tlsConfigured(cfg.ConfigFile); err != nil {
			return nil, fmt.Errorf("web configuration %s: %w", cfg.ConfigFile, err)
		}
	}
	loopback := isLoopback(l.Addr())
	if !loopback && cfg.ConfigFile == "" {
		log.Warn("the web listener is reachable from other hosts and has no TLS or authentication: anyone who can connect reads its page, API and metrics (see --web.config.file)",
			"addr", l.Addr().String())
	}
	mux := http.NewServeMux()
	for path, h := range opts.Handlers {
		mux.Handle(path, h)
	}
	reg := opts.Registry
	if reg == nil {
		reg = Registry()
	}
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if opts.Health != nil {
			if err := opts.Health(); err != nil {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				json.NewEncoder(w).Encode(map[string]string{"status": "unhealthy", "reason": err.Error()})
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	lim := connlimit.New(l, cfg.MaxConns, cfg.MaxConnsPerSource)
	s := &Server{lim: lim, addr: l.Addr().String(), tls: secure, done: make(chan struct{})}
	s.hs = &http.Server{
		Handler:           headers(mux, loopback),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ConnState:         connState(lim),
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug), // TLS handshake noise of scanners
	}
	file := cfg.ConfigFile
	go func() {
		defer close(s.done)
		err := web.Serve(lim, s.hs, &web.FlagConfig{WebConfigFile: &file}, log)
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("web listener", "addr", l.Addr(), "err", err)
		}
	}()
	return s, nil
}

// Close stops the listener and closes every connection.
func (s *Server) Close() error {
	err := s.hs.Close()
	<-s.done
	return err
}

// connState tells lim what the server does with each connection.
func connState(lim *connlimit.Listener) func(net.Conn, http.ConnState) {
	return func(c net.Conn, s http.ConnState) {
		if tc, ok := c.(*tls.Conn); ok {
			c = tc.NetConn() // the connection lim accepted
		}
		switch s {
		case http.StateActive:
			lim.Busy(c, true)
		case http.StateIdle:
			lim.Busy(c, false)
		case http.StateHijacked, http.StateClosed:
			lim.Done(c)
		}
	}
}

// contentPolicy is every answer's Content-Security-Policy: the page's own
// files, its inline styles (uPlot sets them) and data: images; no frames
// around it, no plug-ins, forms nowhere.
const contentPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " +
	"frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'none'"

// headers gives every answer the same security headers, and on a loopback
// listener refuses requests for any other host name: a page on another
// site that a DNS name rebound to 127.0.0.1 would otherwise read the
// targets and the map from a browser on this host.
func headers(next http.Handler, loopback bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if loopback && !loopbackHost(r.Host) {
			http.Error(w, "this listener is bound to loopback and answers only requests for localhost or a loopback address, not "+
				fmt.Sprintf("%q", r.Host), http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isLoopback says whether a listener's address is a loopback one.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// loopbackHost says whether a Host header names this host by loopback:
// localhost (or a name under .localhost) or a loopback address, with or
// without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tlsConfigured says whether a web configuration file turns TLS on (the
// toolkit serves plain HTTP when it names no certificate).
func tlsConfigured(file string) (bool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return false, err
	}
	var c struct {
		TLS struct {
			CertFile string `yaml:"cert_file"`
			Cert     string `yaml:"cert"`
		} `yaml:"tls_server_config"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		return false, err
	}
	return c.TLS.CertFile != "" || c.TLS.Cert != "", nil
}
