package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/careflow/careflow/projections"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the careflow HTTP service",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Flags(), os.LookupEnv)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if demo, _ := cmd.Flags().GetBool("demo"); demo {
				cfg.Demo = true
			}
			log := cfg.logger(os.Stderr)
			// Process-wide settings: applied by the command, not in serve,
			// which tests call inside the test binary.
			limit := tuneRuntime(cfg, os.LookupEnv, log)
			go watchHeap(ctx, limit, time.Minute, log)
			return serve(ctx, cfg, log, nil)
		},
	}
	bindConfigFlags(cmd.Flags())
	cmd.Flags().Bool("demo", false, "seed a demo clinic with staff, clients and care, and print its logins (never on real data)")
	return cmd
}

// serve runs the service until ctx ends, then stops cleanly: it stops
// accepting requests, waits for those in flight, and only then closes the
// store, whose writer finishes the group it is committing first. ready,
// when set, receives the bound address once the listener is up.
func serve(ctx context.Context, cfg Config, log *slog.Logger, ready chan<- string) error {
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := a.Close(); err != nil {
			log.Error("closing the stores", "err", err)
		}
	}()
	release, err := a.lockViews(ctx)
	if errors.Is(err, projections.ErrLocked) {
		return fmt.Errorf("another careflow process is serving %s; stop it first", describeLocation(a.viewsPath))
	}
	if err != nil {
		return err
	}
	defer func() { _ = release() }()

	chainer, err := a.newChainer()
	if err != nil {
		return err
	}
	// The projections and the chainer follow the log until the HTTP server
	// has stopped.
	// If one of them stops on its own (its log subscription failed), the
	// service stops too, loudly, rather than serving ever staler views:
	// a supervisor restarts it and they resume from their checkpoints.
	projCtx, stopProjections := context.WithCancel(context.Background())
	followers := map[string]func(context.Context) error{
		"projections":         a.runner.Run,
		"projection requests": func(ctx context.Context) error { return a.runner.ServeRequests(ctx, time.Second) },
		"chain":               chainer.Run,
	}
	projDone := make(chan error, len(followers))
	died := make(chan error, len(followers))
	for name, run := range followers {
		go func() {
			err := run(projCtx)
			if projCtx.Err() == nil {
				died <- fmt.Errorf("%s stopped: %w", name, err)
			}
			projDone <- err
		}()
	}
	defer func() {
		stopProjections()
		for range followers {
			if err := <-projDone; err != nil && !errors.Is(err, context.Canceled) {
				log.Error("log follower stopped", "err", err)
			}
		}
	}()

	if err := a.bootstrapAdmin(ctx); err != nil {
		return err
	}
	if cfg.Demo {
		if err := seedDemo(ctx, a.deps, a.accounts, os.Stdout); err != nil {
			return fmt.Errorf("seed the demo: %w", err)
		}
	}
	events, err := a.startEventBus(ctx)
	if err != nil {
		return err
	}
	defer events.Close()
	handler, refresh, err := a.newAPI(ctx, events.reactions)
	if err != nil {
		return err
	}
	defer func() { _ = refresh.Close() }()

	if cfg.DebugAddr != "" {
		stopDebug, err := startDebugServer(ctx, cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         tlsCfg,
	}
	log.Info("careflow serving", "addr", ln.Addr().String(), "store", cfg.StoreURL, "tls", tlsCfg != nil)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var stopErr error
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case stopErr = <-died:
		log.Error("careflow stopping: a log follower died", "err", stopErr)
	case <-ctx.Done():
	}
	log.Info("careflow stopping", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("careflow stopped")
	return stopErr
}
