package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/careflow/careflow/projections"
)

func newProjectionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "projections",
		Short: "Inspect and rebuild the read models",
	}
	cmd.AddCommand(newProjectionsStatusCmd(), newProjectionsRebuildCmd())
	return cmd
}

func newProjectionsStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each projection's position, lag and last error",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd, func(ctx context.Context, a *app) error {
				st, err := a.runner.Status(ctx)
				if err != nil {
					return err
				}
				return printStatus(cmd.OutOrStdout(), st, asJSON)
			})
		},
	}
	bindConfigFlags(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

func newProjectionsRebuildCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rebuild NAME|all",
		Short: "Rebuild a projection from the start of the log into fresh tables",
		Long: "Rebuilds into fresh tables and swaps them in once caught up. If `careflow serve` is running, " +
			"it does the rebuild and keeps answering from the old tables meanwhile; otherwise this command does it.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			return withApp(cmd, func(ctx context.Context, a *app) error {
				if err := a.checkProjection(name); err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				release, err := a.lockViews(ctx)
				if errors.Is(err, projections.ErrLocked) {
					fmt.Fprintf(out, "careflow serve holds %s; asking it to rebuild %s\n", describeLocation(a.viewsPath), name)
					id, err := a.views.RequestRebuild(ctx, name)
					if err != nil {
						return err
					}
					if err := a.views.WaitRequest(ctx, id, 200*time.Millisecond); err != nil {
						return fmt.Errorf("rebuild %s: %w", name, err)
					}
					fmt.Fprintf(out, "rebuilt %s\n", name)
					return nil
				}
				if err != nil {
					return err
				}
				defer func() { _ = release() }()
				if err := a.rebuildOffline(ctx, name); err != nil {
					return fmt.Errorf("rebuild %s: %w", name, err)
				}
				fmt.Fprintf(out, "rebuilt %s\n", name)
				return nil
			})
		},
	}
	bindConfigFlags(cmd.Flags())
	return cmd
}

// checkProjection refuses a name that is neither a projection nor "all".
func (a *app) checkProjection(name string) error {
	if name == projections.AllProjections {
		return nil
	}
	for _, n := range a.runner.Names() {
		if n == name {
			return nil
		}
	}
	return fmt.Errorf("no projection %q; known: %v or %q", name, a.runner.Names(), projections.AllProjections)
}

// rebuildOffline runs the projections in this process just long enough to
// rebuild name.
func (a *app) rebuildOffline(ctx context.Context, name string) error {
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.runner.Run(runCtx) }()
	defer func() {
		stop()
		<-done
	}()
	for {
		err := a.runner.Rebuild(ctx, name)
		if !errors.Is(err, projections.ErrNotRunning) {
			return err
		}
		select { // Run is still starting
		case err := <-done:
			return fmt.Errorf("projections stopped: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// withApp loads the configuration, opens the app, runs fn, and closes it.
func withApp(cmd *cobra.Command, fn func(ctx context.Context, a *app) error) error {
	cfg, err := loadConfig(cmd.Flags(), os.LookupEnv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := openApp(ctx, cfg, cfg.logger(os.Stderr))
	if err != nil {
		return err
	}
	defer func() { _ = a.Close() }()
	return fn(ctx, a)
}

func printStatus(w io.Writer, st []projections.Status, asJSON bool) error {
	if asJSON {
		type row struct {
			Name           string  `json:"name"`
			State          string  `json:"state"`
			Version        int     `json:"version"`
			Position       int64   `json:"position"`
			Head           int64   `json:"head"`
			LagEvents      int64   `json:"lagEvents"`
			LagSeconds     float64 `json:"lagSeconds"`
			FailedPosition int64   `json:"failedPosition,omitempty"`
			LastError      string  `json:"lastError,omitempty"`
		}
		rows := make([]row, len(st))
		for i, s := range st {
			rows[i] = row{s.Name, string(s.State), s.Version, s.Position, s.Head, s.LagEvents,
				s.LagTime.Seconds(), s.FailedPosition, s.LastError}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECTION\tSTATE\tVERSION\tPOSITION\tHEAD\tLAG EVENTS\tLAG TIME\tERROR")
	for _, s := range st {
		errText := s.LastError
		if s.FailedPosition != 0 {
			errText = fmt.Sprintf("at %d: %s", s.FailedPosition, s.LastError)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", s.Name, s.State, s.Version, s.Position, s.Head,
			s.LagEvents, s.LagTime.Round(time.Millisecond), errText)
	}
	return tw.Flush()
}
