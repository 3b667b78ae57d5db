// Command abing measures the capacity, cross traffic and available bandwidth
// of a network path with a few dozen packets (see package measure).
package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/abing-net/abing/internal/version"
)

func main() {
	root := &cobra.Command{
		Use:   "abing",
		Short: "Light-weight available bandwidth estimation (ABwE packet-pair dispersion)",
		Long: "abing estimates the capacity (DBC), cross traffic (XTR) and available bandwidth (ABW)\n" +
			"of both directions of a path to an abing reflector, in about a second.",
		SilenceUsage: true,
		Version:      version.Binary(),
	}
	root.AddCommand(measureCommand(), historyCommand(), monitorCommand(), alarmsCommand(), meshCommand(), analyzeCommand())
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}
