package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/careflow/careflow/eventstore/chain"
)

// errVerifyFailed makes `careflow verify` exit non-zero after it printed
// what it found.
var errVerifyFailed = errors.New("verification failed")

func newVerifyCmd() *cobra.Command {
	var publicKey, checkpoints string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the event log against its tamper-evident chain (and, optionally, exported signed checkpoints)",
		Long: "Recomputes the hash chain over the whole event log and compares it with the stored chain: it prints OK " +
			"or the first position that does not match (altered, deleted, inserted or reordered). With --checkpoints " +
			"and --public-key it also proves that every exported checkpoint is signed and still matches the log, " +
			"so the log has only grown since.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (publicKey == "") != (checkpoints == "") {
				return errors.New("--public-key and --checkpoints go together")
			}
			return withApp(cmd, func(ctx context.Context, a *app) error {
				// Chain what was appended since the service last did, so the
				// report covers the whole log.
				chainer, err := chain.NewChainer(a.store, a.chain, chain.ChainerOptions{Logger: a.log})
				if err != nil {
					return err
				}
				if _, err := chainer.CatchUp(ctx); err != nil {
					return err
				}
				report, err := chain.Verify(ctx, a.store, a.chain)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				fmt.Fprintln(out, report.String())
				ok := report.OK()
				if checkpoints != "" {
					cr, err := verifyCheckpointFile(ctx, a, publicKey, checkpoints)
					if err != nil {
						return err
					}
					fmt.Fprintln(out, cr.String())
					ok = ok && cr.OK()
				}
				if !ok {
					return errVerifyFailed
				}
				return nil
			})
		},
	}
	bindConfigFlags(cmd.Flags())
	cmd.Flags().StringVar(&publicKey, "public-key", "", "Ed25519 public key file (KEY.pub) of the checkpoints")
	cmd.Flags().StringVar(&checkpoints, "checkpoints", "", "exported checkpoints (JSON lines from careflow chain export)")
	return cmd
}

func verifyCheckpointFile(ctx context.Context, a *app, publicKey, path string) (chain.CheckpointReport, error) {
	pub, err := chain.LoadPublicKey(publicKey)
	if err != nil {
		return chain.CheckpointReport{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return chain.CheckpointReport{}, err
	}
	defer f.Close()
	cps, err := chain.ReadCheckpoints(f)
	if err != nil {
		return chain.CheckpointReport{}, err
	}
	return chain.VerifyCheckpoints(ctx, a.store, pub, cps)
}

func newChainCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "chain", Short: "Manage the tamper-evident chain's signing key and checkpoints"}
	keygen := &cobra.Command{
		Use:   "keygen KEYFILE",
		Short: "Create an Ed25519 signing key (KEYFILE, mode 0600) and its public key (KEYFILE.pub)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := chain.GenerateKey(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s; set chain_key_file to sign checkpoints\n", args[0], chain.PublicKeyPath(args[0]))
			return nil
		},
	}
	export := &cobra.Command{
		Use:   "export",
		Short: "Write every signed checkpoint as JSON lines to stdout, to keep outside this machine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd, func(ctx context.Context, a *app) error {
				_, err := chain.ExportCheckpoints(ctx, a.chain, cmd.OutOrStdout())
				return err
			})
		},
	}
	bindConfigFlags(export.Flags())
	cmd.AddCommand(keygen, export)
	return cmd
}
