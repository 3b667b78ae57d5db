// Command abing-lab is abing's laboratory: it builds emulated paths out of
// Linux network namespaces and runs abing through them (the demo, the
// accuracy report, the stability check; these need root, iproute2 and tc),
// and runs abing's estimator through the packet-level simulator (sim, on
// any system).
//
// It is a binary of its own, not a subcommand of abing, so that what users
// deploy carries none of the lab's code and can never be turned into a
// traffic generator: the lab runs its generators as copies of itself,
// selected by an environment variable, and only this binary honours it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/abing-net/abing/internal/version"
)

func main() {
	runChild() // a testbed's traffic generator: runs and exits
	root := &cobra.Command{
		Use:          "abing-lab",
		Short:        "abing on emulated paths (demo, accuracy report, stability check: Linux, root) and in the simulator (sim)",
		SilenceUsage: true,
		Version:      version.Binary(),
	}
	root.AddCommand(commands()...)
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}

// signalContext is cancelled by SIGINT or SIGTERM, so that a testbed is
// torn down, or a mesh shut down, on the way out.
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}
