// Package perf holds the heavy performance benchmarks of the projections:
// a rebuild of every read model over a one-million-event SQLite log, the
// memory such a service holds, and the live lag under a steady command
// load. They skip unless -bench names them, so `make test` and a plain
// `make bench` stay fast; docs/performance.md gives the commands and the
// figures.
package perf
