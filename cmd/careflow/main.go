// Command careflow is the one careflow binary: the service and its tools.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "careflow:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "careflow",
		Short:         "careflow: an event-sourced care-workflow engine for asynchronous mental-health care",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newProjectionsCmd(), newVerifyCmd(), newChainCmd(), newDemoCmd(), newBenchCmd(), newMigrateCmd(), newKeysCmd())
	return root
}
