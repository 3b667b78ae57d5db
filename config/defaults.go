package config

import (
	"strconv"
	"time"

	"github.com/abing-net/abing/alarms"
	"github.com/abing-net/abing/influx"
	"github.com/abing-net/abing/linkcost"
	"github.com/abing-net/abing/netloc"
	"github.com/abing-net/abing/notify"
	"github.com/abing-net/abing/store"
	"github.com/abing-net/abing/train"
)

// The defaults of abing monitor and abing mesh agent, all in one place.
// Default and DefaultAgent fill a configuration with them before the file
// is decoded over it, so a key the file leaves out keeps its default and a
// key it gives, zero included, keeps the file's value.
const (
	DefaultInterval  = 60 * time.Second
	DefaultJitter    = 0.1
	DefaultInFlight  = 4
	DefaultPool      = 10
	MaxPool          = 1000
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultMaxProbeShare: the monitor warns when a path's probes take
	// more than 5 % of its capacity.
	DefaultMaxProbeShare = 0.05

	// The mesh agent.
	DefaultBindPort = 7946
	DefaultRefresh  = 10 * time.Minute
	// DefaultCoordMove: Vivaldi's median error is about a tenth of the
	// RTT (Dabek et al.); 2 ms is well inside that on a LAN and far
	// inside on a WAN, and keeps a settled coordinate from publishing
	// on every run.
	DefaultCoordMove  = 2 * time.Millisecond
	DefaultDimensions = 2
	// DefaultEventSize: serf accepts user events of up to MaxEventSize,
	// but gossip carries them in UDP packets of memberlist's 1,400 bytes;
	// a larger event would need IP fragmentation, which paths drop. 1,000
	// bytes leave room for serf's and memberlist's headers.
	DefaultEventSize = 1000
	MinEventSize     = 400
	// MaxEventSize is serf's limit on a user event (serf.UserEventSizeLimit;
	// package meshagent's tests hold the two equal).
	MaxEventSize = 9 * 1024
	// MaxPaths bounds the paths of a member (and so its serf tags).
	MaxPaths       = 8
	DefaultProfile = "lan"

	// The agent's route table (docs/mesh.md, Routes): Babel's discipline.
	// A route is replaced by one better by 5 % and 1 unit on both the
	// latest and the smoothed metric; a new route is kept 30 s; the
	// smoothed metric follows over 10 s (babeld smooths per 4-s hello, so
	// that one momentary value cannot switch a route; the table here is
	// recomputed every second or more often, so the smoothing is in time);
	// a change back within 5 minutes is a flap.
	DefaultRouteMetric     = "cost"
	DefaultRouteMargin     = 0.05
	DefaultRouteMarginAbs  = 1.0
	DefaultRouteHold       = 30 * time.Second
	DefaultRouteSmooth     = 10 * time.Second
	DefaultRouteFlapWindow = 5 * time.Minute
)

// DefaultBind is serf's address by default: every interface, serf's port.
var DefaultBind = ":" + strconv.Itoa(DefaultBindPort)

// Default is a configuration with every default and no targets.
func Default() Config {
	return Config{
		Interval:    Duration(DefaultInterval),
		Jitter:      DefaultJitter,
		MaxInFlight: DefaultInFlight,
		Exclusive:   ExclusiveInterface,
		Pool:        DefaultPool,
		LinkCost:    DefaultLinkCost(),
		Store:       Store{Path: store.DefaultPath(), Retention: Duration(DefaultRetention)},
		Alarms:      Alarms{Detectors: detectors(alarms.Defaults()), CommandTimeout: Duration(notify.DefaultCommandTimeout)},
		Agent:       DefaultAgent(),
	}
}

// DefaultLinkCost: linkcost.Default and linkcost.DefaultThreshold, and a
// warning past DefaultMaxProbeShare of a path.
func DefaultLinkCost() LinkCost {
	return LinkCost{Params: linkcost.Default(), Threshold: linkcost.DefaultThreshold(), MaxProbeShare: DefaultMaxProbeShare}
}

// DefaultInfluxDB is an influxdb section's defaults (influx.Defaults); its
// spool, when not given, lies beside the embedded database (Complete).
func DefaultInfluxDB() InfluxDB { return influxSection(influx.Defaults()) }

// DefaultAgent is the agent section's defaults. Advertise and NetlocPath
// have none of their own: they follow the first path (Complete).
func DefaultAgent() Agent {
	return Agent{
		Bind:       DefaultBind,
		Port:       train.DefaultPort,
		Netloc:     netloc.DefaultAddr,
		Refresh:    Duration(DefaultRefresh),
		CoordMove:  Duration(DefaultCoordMove),
		Dimensions: DefaultDimensions,
		EventSize:  DefaultEventSize,
		Profile:    DefaultProfile,
		Routes: Routes{Metric: DefaultRouteMetric, Margin: DefaultRouteMargin, MarginAbs: DefaultRouteMarginAbs, Hold: Duration(DefaultRouteHold),
			Smooth: Duration(DefaultRouteSmooth), FlapWindow: Duration(DefaultRouteFlapWindow)},
	}
}
