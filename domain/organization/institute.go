package organization

import "github.com/careflow/careflow/domain"

// InstituteCreated: a system admin created an institute.
type InstituteCreated struct {
	InstituteID string `json:"instituteId"`
	Name        string `json:"name"`
	CreatedBy   string `json:"createdBy"`
}

func (InstituteCreated) EventType() string { return "institute.created" }

// InstituteAdminAppointed: a user became an admin of the institute.
type InstituteAdminAppointed struct {
	InstituteID string `json:"instituteId"`
	UserID      string `json:"userId"`
}

func (InstituteAdminAppointed) EventType() string { return "institute.admin_appointed" }

// InstituteAdminDismissed: a user is no longer an admin of the institute.
type InstituteAdminDismissed struct {
	InstituteID string `json:"instituteId"`
	UserID      string `json:"userId"`
}

func (InstituteAdminDismissed) EventType() string { return "institute.admin_dismissed" }

// Institute is a group of clinics with its admins.
type Institute struct {
	domain.Root
	id     string
	name   string
	admins map[string]bool
}

// NewInstitute returns an empty institute to load or create into.
func NewInstitute() *Institute { return &Institute{admins: map[string]bool{}} }

func (i *Institute) ID() string   { return i.id }
func (i *Institute) Name() string { return i.name }
func (i *Institute) Exists() bool { return i.id != "" }

// IsAdmin reports whether userID is an admin of this institute.
func (i *Institute) IsAdmin(userID string) bool { return i.admins[userID] }

// Create records the institute.
func (i *Institute) Create(id, name, by string) error {
	if i.Exists() {
		return domain.Conflict("institute-exists", "institute %s already exists", i.id)
	}
	if err := checkID("invalid-institute", "instituteId", id); err != nil {
		return err
	}
	n, err := checkName("invalid-institute", "name", name)
	if err != nil {
		return err
	}
	i.record(InstituteCreated{InstituteID: id, Name: n, CreatedBy: by})
	return nil
}

// AppointAdmin makes userID an admin of the institute.
func (i *Institute) AppointAdmin(userID string) error {
	if !i.Exists() {
		return domain.NotFound("institute-not-found", "no such institute")
	}
	if err := checkID("invalid-institute-admin", "userId", userID); err != nil {
		return err
	}
	if i.admins[userID] {
		return domain.Conflict("already-institute-admin", "user %s is already an admin of institute %s", userID, i.id)
	}
	i.record(InstituteAdminAppointed{InstituteID: i.id, UserID: userID})
	return nil
}

// DismissAdmin removes userID from the institute's admins.
func (i *Institute) DismissAdmin(userID string) error {
	if !i.Exists() {
		return domain.NotFound("institute-not-found", "no such institute")
	}
	if !i.admins[userID] {
		return domain.Conflict("not-institute-admin", "user %s is not an admin of institute %s", userID, i.id)
	}
	i.record(InstituteAdminDismissed{InstituteID: i.id, UserID: userID})
	return nil
}

// Replay applies one stored event during load.
func (i *Institute) Replay(e domain.Event) {
	i.apply(e)
	i.Loaded()
}

func (i *Institute) record(e domain.Event) { i.Record(e, i.apply) }

func (i *Institute) apply(e domain.Event) {
	switch e := e.(type) {
	case InstituteCreated:
		i.id, i.name = e.InstituteID, e.Name
	case InstituteAdminAppointed:
		i.admins[e.UserID] = true
	case InstituteAdminDismissed:
		delete(i.admins, e.UserID)
	}
}
