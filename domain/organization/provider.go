package organization

import "github.com/careflow/careflow/domain"

// ProviderRegistered: a care provider is known to careflow.
type ProviderRegistered struct {
	ProviderID   string `json:"providerId"`
	DisplayName  string `json:"displayName"`
	RegisteredBy string `json:"registeredBy"`
}

func (ProviderRegistered) EventType() string { return "provider.registered" }

// ProviderDeactivated: the provider may no longer act in any clinic.
type ProviderDeactivated struct {
	ProviderID string `json:"providerId"`
	Reason     string `json:"reason,omitempty"`
}

func (ProviderDeactivated) EventType() string { return "provider.deactivated" }

// ProviderReactivated: an inactive provider is active again.
type ProviderReactivated struct {
	ProviderID string `json:"providerId"`
}

func (ProviderReactivated) EventType() string { return "provider.reactivated" }

// Provider is a care provider: one person who can work in several clinics.
type Provider struct {
	domain.Root
	id       string
	name     string
	inactive bool
}

// NewProvider returns an empty provider to load or register into.
func NewProvider() *Provider { return &Provider{} }

func (p *Provider) ID() string          { return p.id }
func (p *Provider) DisplayName() string { return p.name }
func (p *Provider) Exists() bool        { return p.id != "" }

// Active reports whether the provider exists and is active.
func (p *Provider) Active() bool { return p.Exists() && !p.inactive }

// Register records a new, active provider.
func (p *Provider) Register(id, displayName, by string) error {
	if p.Exists() {
		return domain.Conflict("provider-exists", "provider %s already exists", p.id)
	}
	if err := checkID("invalid-provider", "providerId", id); err != nil {
		return err
	}
	n, err := checkName("invalid-provider", "displayName", displayName)
	if err != nil {
		return err
	}
	p.record(ProviderRegistered{ProviderID: id, DisplayName: n, RegisteredBy: by})
	return nil
}

// Deactivate stops the provider acting anywhere.
func (p *Provider) Deactivate(reason string) error {
	if !p.Exists() {
		return domain.NotFound("provider-not-found", "no such provider")
	}
	if p.inactive {
		return domain.Conflict("provider-inactive", "provider %s is already inactive", p.id)
	}
	if len(reason) > 1000 {
		return domain.Validation("invalid-provider", "reason", "reason must be at most 1000 characters")
	}
	p.record(ProviderDeactivated{ProviderID: p.id, Reason: reason})
	return nil
}

// Reactivate makes an inactive provider active again.
func (p *Provider) Reactivate() error {
	if !p.Exists() {
		return domain.NotFound("provider-not-found", "no such provider")
	}
	if !p.inactive {
		return domain.Conflict("provider-active", "provider %s is already active", p.id)
	}
	p.record(ProviderReactivated{ProviderID: p.id})
	return nil
}

// Replay applies one stored event during load.
func (p *Provider) Replay(e domain.Event) {
	p.apply(e)
	p.Loaded()
}

func (p *Provider) record(e domain.Event) { p.Record(e, p.apply) }

func (p *Provider) apply(e domain.Event) {
	switch e := e.(type) {
	case ProviderRegistered:
		p.id, p.name = e.ProviderID, e.DisplayName
	case ProviderDeactivated:
		p.inactive = true
	case ProviderReactivated:
		p.inactive = false
	}
}
