// Package domain holds what careflow's aggregates share: the actor who
// issues a command, the Event contract, the record-and-apply root, and the
// typed errors every layer maps to a response. The aggregates themselves
// live in subpackages (organization, books, care). No I/O happens here.
package domain
