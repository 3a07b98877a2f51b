package main

import (
	"context"
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

	"github.com/careflow/careflow/api"
	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/sqlite"
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
			return serve(ctx, cfg, cfg.logger(os.Stderr), nil)
		},
	}
	bindConfigFlags(cmd.Flags())
	return cmd
}

// openStore opens the event store the configuration names.
func openStore(ctx context.Context, cfg Config) (eventstore.Store, error) {
	loc, err := parseStoreURL(cfg.StoreURL)
	if err != nil {
		return nil, err
	}
	types, err := commands.NewRegistry()
	if err != nil {
		return nil, err
	}
	switch loc.Kind {
	case "sqlite":
		return sqlite.Open(ctx, sqlite.Config{Path: loc.Path}, eventstore.Options{Types: types})
	}
	return nil, fmt.Errorf("store %q is not supported", cfg.StoreURL)
}

// serve runs the service until ctx ends, then stops cleanly: it stops
// accepting requests, waits for those in flight, and only then closes the
// store, whose writer finishes the group it is committing first. ready,
// when set, receives the bound address once the listener is up.
func serve(ctx context.Context, cfg Config, log *slog.Logger, ready chan<- string) error {
	store, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing the event store", "err", err)
		}
	}()

	mux := http.NewServeMux()
	api.Health{Store: store, Logger: log}.Register(mux)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("careflow serving", "addr", ln.Addr().String(), "store", cfg.StoreURL)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("careflow stopping", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("careflow stopped")
	return nil
}
