package main

import (
	"fmt"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/careflow/careflow/eventstore/postgres"
)

// newMigrateCmd is `careflow migrate`: create or upgrade the PostgreSQL
// store's schema (the SQLite store migrates itself on open).
func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the PostgreSQL event store's schema (SQLite stores migrate themselves)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Flags(), os.LookupEnv)
			if err != nil {
				return err
			}
			loc, _ := parseStoreURL(cfg.StoreURL)
			if loc.Kind != "postgres" {
				fmt.Fprintln(cmd.OutOrStdout(), "the SQLite store migrates itself when it opens; nothing to do")
				return nil
			}
			pool, err := pgxpool.New(cmd.Context(), loc.URL)
			if err != nil {
				return fmt.Errorf("connect: %w", err)
			}
			defer pool.Close()
			if err := postgres.Migrate(cmd.Context(), pool); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "schema is up to date")
			return nil
		},
	}
	bindConfigFlags(cmd.Flags())
	return cmd
}
