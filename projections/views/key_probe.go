package views

import (
	"context"
	"sync"

	"github.com/careflow/careflow/eventstore"
)

// KeyProbe lets a caller that keeps a view's answer in memory (the API's
// view cache) tell later whether the clients' data keys still open what
// the view showed: a forgotten client's key is destroyed, and their PHI
// must not outlive it, in this process or in any other sharing the key
// store. A read made with a context from WithKeyProbe remembers, for each
// client, the first sealed value it opened; KeysLive opens those again.
type KeyProbe struct {
	mu      sync.Mutex
	sealer  eventstore.Sealer
	failed  bool
	samples map[string]sealedSample // by client id
}

type sealedSample struct {
	sealed, aad []byte
}

type keyProbeKey struct{}

// WithKeyProbe returns ctx carrying a new KeyProbe for the reads made with
// it (ReadInbox, ClientSessions, ClientSessionDetail, SessionView).
func WithKeyProbe(ctx context.Context) (context.Context, *KeyProbe) {
	p := &KeyProbe{samples: map[string]sealedSample{}}
	return context.WithValue(ctx, keyProbeKey{}, p), p
}

// KeysLive reports whether every client key the reads opened values under
// still opens them. False also when a read found a key destroyed (it read
// redacted values) or failed to open a value.
func (p *KeyProbe) KeysLive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed {
		return false
	}
	for subject, s := range p.samples {
		if _, err := p.sealer.Open(subject, s.sealed, s.aad); err != nil {
			return false
		}
	}
	return true
}

// probing returns c recording into ctx's KeyProbe, if it carries one.
func probing(ctx context.Context, c cipher) cipher {
	p, ok := ctx.Value(keyProbeKey{}).(*KeyProbe)
	if !ok {
		return c
	}
	p.mu.Lock()
	p.sealer = c.s
	p.mu.Unlock()
	return cipher{s: probingSealer{Sealer: c.s, p: p}}
}

// probingSealer opens through the read model's Sealer and remembers what
// it opened first per client.
type probingSealer struct {
	eventstore.Sealer
	p *KeyProbe
}

func (s probingSealer) Open(subject string, sealed, aad []byte) ([]byte, error) {
	plain, err := s.Sealer.Open(subject, sealed, aad)
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if err != nil {
		// A destroyed key (the view shows redacted values) or a failure:
		// nothing worth keeping.
		s.p.failed = true
	} else if _, ok := s.p.samples[subject]; !ok {
		s.p.samples[subject] = sealedSample{sealed: append([]byte(nil), sealed...), aad: append([]byte(nil), aad...)}
	}
	return plain, err
}
