//go:build !linux

package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func runChild() {}

func commands() []*cobra.Command {
	return []*cobra.Command{simCommand(), meshscaleCommand(), {
		Use:   "demo",
		Short: "needs Linux",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("abing-lab needs Linux: it builds network namespaces and shapes links with tc")
		},
	}}
}
