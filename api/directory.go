package api

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/identity"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
)

// directoryBatch is how many events one catch-up read asks for.
const directoryBatch = 1000

// Directory answers the organization questions the API asks across
// streams: which clinics a principal belongs to (the clinics claim of
// access tokens, the clinics whose books a caller may read) and which books
// each clinic has.
//
// It is an in-memory index of the organization and book events, brought up
// to date from the store before every answer (one ReadAll from the last
// position it saw, usually returning nothing), so an answer reflects every
// event committed before the question was asked: a clinic created or a
// provider added is in the next token, with no projection lag to wait for.
// Memberships are replayed into the domain's own Clinic and Institute
// aggregates, so the index cannot disagree with what the command handlers
// decide. It holds only organization facts (ids, roles, book titles), never
// a client's name or care data; its size grows with the organization, not
// with the care events it skips.
type Directory struct {
	store eventstore.Store
	codec *codec.Registry
	types map[string]bool
	batch int // events per catch-up read

	mu           sync.Mutex
	position     int64
	clinics      map[string]*organization.Clinic
	institutes   map[string]*organization.Institute
	clientClinic map[string]string
	books        map[string]BookSummary
}

// BookSummary describes one version of a book in lists.
type BookSummary struct {
	ID string `json:"id"`
	// ClinicID is the clinic that owns the book; absent for built-ins.
	ClinicID string     `json:"clinicId,omitempty"`
	BuiltIn  bool       `json:"builtIn"`
	Kind     books.Kind `json:"kind"`
	Title    string     `json:"title"`
	// Version is the current version (older ones stay readable).
	Version int `json:"version"`
}

var _ Memberships = (*Directory)(nil)

// NewDirectory indexes the organization events of store, decoding them
// with reg (commands.NewRegistry()).
func NewDirectory(store eventstore.Store, reg *codec.Registry) *Directory {
	types := map[string]bool{}
	for _, e := range []domain.Event{
		organization.InstituteCreated{}, organization.InstituteAdminAppointed{}, organization.InstituteAdminDismissed{},
		organization.ClinicCreated{}, organization.ClinicStaffAdded{}, organization.ClinicStaffRemoved{},
		organization.ClinicProviderJoined{}, organization.ClinicProviderLeft{},
		organization.ClientRegistered{}, books.BookDefined{}, books.BookRevised{},
	} {
		types[e.EventType()] = true
	}
	return &Directory{
		store: store, codec: reg, types: types, batch: directoryBatch,
		clinics: map[string]*organization.Clinic{}, institutes: map[string]*organization.Institute{},
		clientClinic: map[string]string{}, books: map[string]BookSummary{},
	}
}

// ClinicsOf implements Memberships: the clinics an account's actor
// belongs to now.
func (d *Directory) ClinicsOf(ctx context.Context, account *identity.Account) ([]string, error) {
	return d.Clinics(ctx, account.Actor())
}

// Clinics returns the ids of the clinics where actor holds its role now,
// sorted: for staff and providers the clinics whose members they are, for
// an institute admin every clinic of the institutes they administer, for a
// client the clinic of their record. A system admin belongs to no clinic
// in particular (the tenant checks let them pass everywhere): none.
func (d *Directory) Clinics(ctx context.Context, actor domain.Actor) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.catchUp(ctx); err != nil {
		return nil, err
	}
	out := []string{}
	switch actor.Role {
	case domain.RoleClient:
		if c, ok := d.clientClinic[actor.ID]; ok {
			out = append(out, c)
		}
	case domain.RoleInstituteAdmin:
		for id, c := range d.clinics {
			if inst, ok := d.institutes[c.InstituteID()]; ok && inst.IsAdmin(actor.ID) {
				out = append(out, id)
			}
		}
	case domain.RoleClinicAdmin, domain.RoleProvider, domain.RoleAuditor:
		for id, c := range d.clinics {
			if c.Has(actor.ID, actor.Role) {
				out = append(out, id)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// ClinicBooks returns the current summary of every book of the clinics,
// sorted by id.
func (d *Directory) ClinicBooks(ctx context.Context, clinicIDs []string) ([]BookSummary, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.catchUp(ctx); err != nil {
		return nil, err
	}
	out := []BookSummary{}
	for _, b := range d.books {
		if slices.Contains(clinicIDs, b.ClinicID) {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// BookClinic returns the clinic that owns a clinic book, if it exists.
func (d *Directory) BookClinic(ctx context.Context, bookID string) (string, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.catchUp(ctx); err != nil {
		return "", false, err
	}
	b, ok := d.books[bookID]
	return b.ClinicID, ok, nil
}

// catchUp applies every event committed since the last call. d.mu is held.
func (d *Directory) catchUp(ctx context.Context) error {
	for {
		recs, err := d.store.ReadAll(ctx, d.position, d.batch)
		if err != nil {
			return fmt.Errorf("directory: read events after %d: %w", d.position, err)
		}
		for _, rec := range recs {
			if d.types[rec.Type] {
				if err := d.apply(rec); err != nil {
					return err
				}
			}
			d.position = rec.Position
		}
		if len(recs) < d.batch {
			return nil
		}
	}
}

func (d *Directory) apply(rec eventstore.RecordedEvent) error {
	v, err := d.codec.Decode(rec.Type, rec.SchemaVersion, rec.Data)
	if err != nil {
		return fmt.Errorf("directory: decode %s at position %d: %w", rec.Type, rec.Position, err)
	}
	switch e := v.(type) {
	case organization.InstituteCreated, organization.InstituteAdminAppointed, organization.InstituteAdminDismissed:
		inst, ok := d.institutes[rec.Stream.ID]
		if !ok {
			inst = organization.NewInstitute()
			d.institutes[rec.Stream.ID] = inst
		}
		inst.Replay(e.(domain.Event))
	case organization.ClinicCreated, organization.ClinicStaffAdded, organization.ClinicStaffRemoved,
		organization.ClinicProviderJoined, organization.ClinicProviderLeft:
		c, ok := d.clinics[rec.Stream.ID]
		if !ok {
			c = organization.NewClinic()
			d.clinics[rec.Stream.ID] = c
		}
		c.Replay(e.(domain.Event))
	case organization.ClientRegistered:
		d.clientClinic[e.ClientID] = e.ClinicID
	case books.BookDefined:
		d.books[e.BookID] = BookSummary{ID: e.BookID, ClinicID: e.ClinicID, Kind: e.Spec.Kind, Title: e.Spec.Title, Version: 1}
	case books.BookRevised:
		d.books[e.BookID] = BookSummary{ID: e.BookID, ClinicID: e.ClinicID, Kind: e.Spec.Kind, Title: e.Spec.Title, Version: e.Version}
	default:
		return fmt.Errorf("directory: %s decoded to unexpected %T", rec.Type, v)
	}
	return nil
}
