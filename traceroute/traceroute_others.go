//go:build !linux

package traceroute

import (
	"context"
	"time"

	"github.com/abing-net/abing/record"
)

// Tracer needs Linux (raw ICMP sockets parsed as the Linux kernel
// delivers them); elsewhere every trace reports so.
type Tracer struct {
	MaxHops int
	Timeout time.Duration
	Port    int
	Do      func(func() error) error
}

// Trace returns a trace whose error says traceroute needs Linux.
func (tr *Tracer) Trace(_ context.Context, host string) *record.Trace {
	return &record.Trace{Time: time.Now().UTC(), Target: host, Error: "traceroute needs Linux"}
}
