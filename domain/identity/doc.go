// Package identity holds careflow's user accounts: who may sign in, with
// which password, in which role, and which domain subject (a provider or a
// client) they act as. An account is an event-sourced aggregate keyed by
// its normalized username, so the event store itself refuses a second
// account with the same username.
package identity
