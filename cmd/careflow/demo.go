package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections"
)

// demoPassword is the password of every demo account. The demo data is for
// trying careflow out on a laptop: never seed it into a store with real
// clients.
const demoPassword = "careflow-demo"

// demoCommandPrefix starts every command id the demo seeder issues. The ids
// are fixed, and so are the ids of everything they create (derived from the
// command ids), so seeding again answers every command as a duplicate and
// writes nothing. Changing what the demo seeds means a new prefix.
const demoCommandPrefix = "careflow-demo-v1:"

// demoSeeder is the actor the seeder acts as where a system administrator
// is needed: creating the institute, the clinic, providers and accounts.
var demoSeeder = domain.Actor{ID: "careflow-demo-seeder", Role: domain.RoleSystemAdmin}

// Demo usernames. The load harness signs in as the provider and the
// clients.
const (
	demoAdminUser    = "demo-admin"
	demoAuditorUser  = "demo-auditor"
	demoProviderUser = "demo-provider"
	demoProvider2    = "demo-provider2"
	demoClientUser   = "demo-client" // demo-client1..3
)

// demoLogin is one demo account.
type demoLogin struct {
	Username string
	Password string
	Role     domain.Role
	ActorID  string
	Who      string
}

// demoClient is a seeded client with the sessions of their weekly series.
type demoClient struct {
	ID       string
	Name     string
	Sessions []string // the series, in order; the first is active
}

// demoData is what the seeder made (the same ids on every run).
type demoData struct {
	InstituteID string
	ClinicID    string
	Providers   []string // provider ids; the first is on every care team
	AdminUserID string
	AuditorID   string
	Clients     []demoClient
	Logins      []demoLogin
	// UrgentSessionID holds the completed PHQ-9 with item 9 above 0.
	UrgentSessionID string
	// Written is false when everything had been seeded before.
	Written bool
}

// newDemoCmd is `careflow demo`: seed the configured store with the demo
// clinic and exit.
func newDemoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Seed the configured store with a demo clinic, its staff, clients and care (idempotent)",
		Long: "Seeds a demo institute and clinic with two providers, a clinic admin, an auditor and three clients\n" +
			"with accounts, weekly PHQ-9 series and some completed care, through the ordinary command handlers.\n" +
			"Running it again writes nothing. Every demo account has the password " + demoPassword + ":\n" +
			"never seed a store that holds real clients.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd, func(ctx context.Context, a *app) error {
				// serve holds this lock; two processes must not write one
				// SQLite store.
				release, err := a.lockViews(ctx)
				if errors.Is(err, projections.ErrLocked) {
					return fmt.Errorf("careflow serve is running on this store; stop it first, or start it with serve --demo")
				}
				if err != nil {
					return err
				}
				defer func() { _ = release() }()
				return seedDemo(ctx, a.deps, a.accounts, cmd.OutOrStdout())
			})
		},
	}
	bindConfigFlags(cmd.Flags())
	return cmd
}

// seedDemo seeds the demo data through the command handlers and prints the
// demo logins and what to try to out. It is idempotent.
func seedDemo(ctx context.Context, d commands.Deps, accounts *commands.Accounts, out io.Writer) error {
	data, err := plantDemo(ctx, d, accounts)
	if err != nil {
		return err
	}
	return printDemo(out, data)
}

// plantDemo issues the demo's commands, each with its fixed command id.
func plantDemo(ctx context.Context, d commands.Deps, accounts *commands.Accounts) (demoData, error) {
	head, err := d.Store.HeadPosition(ctx)
	if err != nil {
		return demoData{}, fmt.Errorf("demo: %w", err)
	}
	p := &demoPlanter{d: d, org: commands.NewOrganization(d), accounts: accounts}
	p.care = commands.NewCare(d, p.org)
	if err := p.organization(ctx); err != nil {
		return demoData{}, fmt.Errorf("demo: %w", err)
	}
	if err := p.careLoop(ctx); err != nil {
		return demoData{}, fmt.Errorf("demo: %w", err)
	}
	after, err := d.Store.HeadPosition(ctx)
	if err != nil {
		return demoData{}, fmt.Errorf("demo: %w", err)
	}
	p.data.Written = after > head
	return p.data, nil
}

type demoPlanter struct {
	d        commands.Deps
	org      *commands.Organization
	care     *commands.Care
	accounts *commands.Accounts
	data     demoData
}

func demoMeta(a domain.Actor, step string) commands.Meta {
	return commands.Meta{Actor: a, CommandID: demoCommandPrefix + step}
}

// account registers a demo account. One the demo registered before is
// only read back: hashing the password again would cost a slow argon2id
// hash per account on every serve --demo start, to write nothing.
func (p *demoPlanter) account(ctx context.Context, step string, login demoLogin, providerID, clientID string) (string, error) {
	m := demoMeta(demoSeeder, step)
	recs, err := p.d.Store.ReadStream(ctx, commands.AccountStream(login.Username), 1)
	if err != nil {
		return "", fmt.Errorf("account %s: %w", login.Username, err)
	}
	var userID string
	if len(recs) > 0 {
		if recs[0].Metadata.CommandID != m.CommandID {
			return "", fmt.Errorf("account %s: the username is taken by an account the demo did not make", login.Username)
		}
		acc, err := p.accounts.Account(ctx, login.Username)
		if err != nil {
			return "", fmt.Errorf("account %s: %w", login.Username, err)
		}
		userID = acc.UserID()
	} else {
		reg, err := p.accounts.RegisterAccount(ctx, m, commands.RegisterAccount{
			Username: login.Username, Password: login.Password, Role: login.Role, ProviderID: providerID, ClientID: clientID,
		})
		if err != nil {
			return "", fmt.Errorf("account %s: %w", login.Username, err)
		}
		userID = reg.UserID
	}
	if login.ActorID == "" {
		login.ActorID = userID
	}
	p.data.Logins = append(p.data.Logins, login)
	return userID, nil
}

// organization seeds the institute, the clinic, its staff and providers,
// the clients with their care teams, and everyone's accounts.
func (p *demoPlanter) organization(ctx context.Context) error {
	inst, err := p.org.CreateInstitute(ctx, demoMeta(demoSeeder, "institute"), commands.CreateInstitute{Name: "Demo Institute"})
	if err != nil {
		return fmt.Errorf("institute: %w", err)
	}
	p.data.InstituteID = inst.Stream.ID

	clinic, err := p.org.CreateClinic(ctx, demoMeta(demoSeeder, "clinic"), commands.CreateClinic{
		InstituteID: p.data.InstituteID, Name: "Demo Clinic",
	})
	if err != nil {
		return fmt.Errorf("clinic: %w", err)
	}
	p.data.ClinicID = clinic.Stream.ID

	for i, staff := range []struct {
		username string
		role     domain.Role
		who      string
		id       *string
	}{
		{demoAdminUser, domain.RoleClinicAdmin, "clinic administrator of Demo Clinic", &p.data.AdminUserID},
		{demoAuditorUser, domain.RoleAuditor, "auditor of Demo Clinic (reads the audit trail)", &p.data.AuditorID},
	} {
		userID, err := p.account(ctx, fmt.Sprintf("account:staff:%d", i+1),
			demoLogin{Username: staff.username, Password: demoPassword, Role: staff.role, Who: staff.who}, "", "")
		if err != nil {
			return err
		}
		*staff.id = userID
		if _, err := p.org.AddStaff(ctx, demoMeta(demoSeeder, fmt.Sprintf("staff:%d", i+1)), commands.AddStaff{
			ClinicID: p.data.ClinicID, UserID: userID, Role: staff.role,
		}); err != nil {
			return fmt.Errorf("staff %s: %w", staff.username, err)
		}
	}

	for i, prov := range []struct{ username, name string }{
		{demoProviderUser, "Dr Ada Lind"},
		{demoProvider2, "Dr Ben Okafor"},
	} {
		reg, err := p.org.RegisterProvider(ctx, demoMeta(demoSeeder, fmt.Sprintf("provider:%d", i+1)), commands.RegisterProvider{
			ClinicID: p.data.ClinicID, DisplayName: prov.name,
		})
		if err != nil {
			return fmt.Errorf("provider %s: %w", prov.name, err)
		}
		p.data.Providers = append(p.data.Providers, reg.ProviderID)
		if _, err := p.account(ctx, fmt.Sprintf("account:provider:%d", i+1), demoLogin{
			Username: prov.username, Password: demoPassword, Role: domain.RoleProvider, ActorID: reg.ProviderID,
			Who: prov.name + ", care provider",
		}, reg.ProviderID, ""); err != nil {
			return err
		}
	}

	lind, okafor := p.data.Providers[0], p.data.Providers[1]
	admin := domain.Actor{ID: p.data.AdminUserID, Role: domain.RoleClinicAdmin}
	for i, cl := range []struct {
		name string
		team []string
	}{
		{"Sam Rivera", []string{lind, okafor}},
		{"Robin Chen", []string{lind}},
		{"Kai Novak", []string{okafor, lind}},
	} {
		res, err := p.org.RegisterClient(ctx, demoMeta(admin, fmt.Sprintf("client:%d", i+1)), commands.RegisterClient{
			ClinicID: p.data.ClinicID, DisplayName: cl.name, CareTeam: cl.team,
		})
		if err != nil {
			return fmt.Errorf("client %s: %w", cl.name, err)
		}
		id := res.Stream.ID
		p.data.Clients = append(p.data.Clients, demoClient{ID: id, Name: cl.name})
		if _, err := p.account(ctx, fmt.Sprintf("account:client:%d", i+1), demoLogin{
			Username: fmt.Sprintf("%s%d", demoClientUser, i+1), Password: demoPassword, Role: domain.RoleClient,
			ActorID: id, Who: cl.name + ", client",
		}, "", id); err != nil {
			return err
		}
	}
	return nil
}

// demoSeriesStart is when the demo's weekly series start: 09:00 UTC three
// days before today, so the first week is under way whenever one seeds.
func demoSeriesStart(now time.Time) time.Time {
	day := now.UTC().Truncate(24 * time.Hour)
	return day.Add(-3*24*time.Hour + 9*time.Hour)
}

// careLoop seeds the care: a four-week PHQ-9 series per client (with GAD-7
// for Sam), the first week active, Sam's PHQ-9 completed with item 9 above
// 0 (an urgent risk flag in Dr Lind's inbox), Robin's completed with
// feedback and a comment thread, and messages with Kai.
func (p *demoPlanter) careLoop(ctx context.Context) error {
	lind := domain.Actor{ID: p.data.Providers[0], Role: domain.RoleProvider}
	okafor := domain.Actor{ID: p.data.Providers[1], Role: domain.RoleProvider}
	holders := []domain.Actor{lind, lind, okafor}
	start := demoSeriesStart(p.d.Clock())
	for i := range p.data.Clients {
		cl := &p.data.Clients[i]
		homework := []string{books.PHQ9ID}
		if i == 0 {
			homework = append(homework, books.GAD7ID)
		}
		res, err := p.care.ScheduleSession(ctx, demoMeta(holders[i], fmt.Sprintf("series:%d", i+1)), commands.ScheduleSession{
			ClientID: cl.ID, Title: "Weekly check-in",
			Description: "A short weekly questionnaire and a note on how the week went.",
			Start:       start, Repeat: 4, Homework: homework, Reminders: []int{1},
		})
		if err != nil {
			return fmt.Errorf("sessions of %s: %w", cl.Name, err)
		}
		for _, s := range res.Sessions {
			cl.Sessions = append(cl.Sessions, s.ID)
		}
		if err := p.activate(ctx, holders[i], i, cl.Sessions[0]); err != nil {
			return fmt.Errorf("first session of %s: %w", cl.Name, err)
		}
	}

	sam, robin, kai := p.data.Clients[0], p.data.Clients[1], p.data.Clients[2]
	samActor := domain.Actor{ID: sam.ID, Role: domain.RoleClient}
	robinActor := domain.Actor{ID: robin.ID, Role: domain.RoleClient}
	kaiActor := domain.Actor{ID: kai.ID, Role: domain.RoleClient}

	// Sam: PHQ-9 item 9 ("thoughts that you would be better off dead") at
	// 1, which raises the urgent risk flag.
	p.data.UrgentSessionID = sam.Sessions[0]
	if _, err := p.complete(ctx, samActor, "sam:phq-9", sam.Sessions[0], books.PHQ9ID, 2, 2, 1, 2, 1, 1, 1, 0, 1); err != nil {
		return err
	}
	if err := p.message(ctx, samActor, "message:sam:1", sam.Sessions[0], "It has been a rough week. I filled in the questionnaire."); err != nil {
		return err
	}

	// Robin: a mild PHQ-9, Dr Lind's feedback, Robin's question and the reply.
	robinPHQ, err := p.complete(ctx, robinActor, "robin:phq-9", robin.Sessions[0], books.PHQ9ID, 1, 1, 1, 1, 0, 1, 0, 0, 0)
	if err != nil {
		return err
	}
	fb, err := p.care.GiveFeedback(ctx, demoMeta(lind, "robin:feedback"), commands.GiveFeedback{
		SessionID: robin.Sessions[0], AssignmentID: robinPHQ,
		Text: "Thank you, Robin. Your score is in the mild range. Keep up the evening walks.",
	})
	if err != nil {
		return fmt.Errorf("feedback for Robin: %w", err)
	}
	for j, c := range []struct {
		by   domain.Actor
		text string
	}{
		{robinActor, "Thanks! Should I keep the sleep diary as well?"},
		{lind, "Yes, please: bring it to next week's check-in and we will look at it together."},
	} {
		if _, err := p.care.CommentOnFeedback(ctx, demoMeta(c.by, fmt.Sprintf("robin:comment:%d", j+1)), commands.CommentOnFeedback{
			SessionID: robin.Sessions[0], AssignmentID: robinPHQ, FeedbackID: fb.ID, Text: c.text,
		}); err != nil {
			return fmt.Errorf("comment in Robin's thread: %w", err)
		}
	}

	// Kai: a welcome and an answer in the message center.
	if err := p.message(ctx, okafor, "message:kai:1", kai.Sessions[0], "Welcome, Kai. Your first check-in is open until the end of the week."); err != nil {
		return err
	}
	return p.message(ctx, kaiActor, "message:kai:2", kai.Sessions[0], "Thanks, I will fill it in tonight.")
}

// activate activates a session that is still scheduled. One already
// active (activated by an earlier run or by the time reactor, also while
// this runs) is left as is.
func (p *demoPlanter) activate(ctx context.Context, by domain.Actor, index int, sessionID string) error {
	s, err := commands.Load(ctx, p.d, eventstore.NewStreamID(care.StreamType, sessionID), care.New)
	if err != nil {
		return err
	}
	if s.View().State != care.StateScheduled {
		return nil
	}
	_, err = p.care.ActivateSession(ctx, demoMeta(by, fmt.Sprintf("activate:%d", index+1)), commands.ActivateSession{SessionID: sessionID})
	if errors.Is(err, &domain.Error{Slug: "session-not-scheduled"}) {
		return nil // the time reactor activated it in between
	}
	return err
}

// complete starts and completes the session's assignment of bookID with
// the answers in item order, and returns the assignment id.
func (p *demoPlanter) complete(ctx context.Context, client domain.Actor, step, sessionID, bookID string, values ...int) (string, error) {
	s, err := commands.Load(ctx, p.d, eventstore.NewStreamID(care.StreamType, sessionID), care.New)
	if err != nil {
		return "", err
	}
	var assignmentID string
	for _, a := range s.View().Assignments {
		if a.BookID == bookID {
			assignmentID = a.ID
			break
		}
	}
	if assignmentID == "" {
		return "", fmt.Errorf("session %s has no %s assignment", sessionID, bookID)
	}
	if _, err := p.care.StartAssignment(ctx, demoMeta(client, step+":start"), commands.StartAssignment{
		SessionID: sessionID, AssignmentID: assignmentID,
	}); err != nil {
		return "", fmt.Errorf("start %s: %w", step, err)
	}
	book, ok := books.BuiltInBook(bookID)
	if !ok {
		return "", fmt.Errorf("no built-in book %s", bookID)
	}
	items := book.Items()
	if len(items) != len(values) {
		return "", fmt.Errorf("%s has %d items, the demo answers %d", bookID, len(items), len(values))
	}
	answers := make([]books.Answer, len(items))
	for i, it := range items {
		answers[i] = books.Answer{ItemID: it.ID, Value: values[i]}
	}
	if _, err := p.care.CompleteAssignment(ctx, demoMeta(client, step+":complete"), commands.CompleteAssignment{
		SessionID: sessionID, AssignmentID: assignmentID, Answers: answers,
	}); err != nil {
		return "", fmt.Errorf("complete %s: %w", step, err)
	}
	return assignmentID, nil
}

func (p *demoPlanter) message(ctx context.Context, by domain.Actor, step, sessionID, text string) error {
	if _, err := p.care.PostMessage(ctx, demoMeta(by, step), commands.PostMessage{SessionID: sessionID, Text: text}); err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	return nil
}

// printDemo prints the demo logins and what to try with them.
func printDemo(out io.Writer, data demoData) error {
	w := &errWriter{w: out}
	if data.Written {
		w.printf("careflow demo data seeded: Demo Institute / Demo Clinic (clinic %s).\n", data.ClinicID)
	} else {
		w.printf("careflow demo data already present (clinic %s); nothing written.\n", data.ClinicID)
	}
	w.printf("Demo only: every demo account has the password %q. Never seed a store with real clients.\n\n", demoPassword)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "USERNAME\tPASSWORD\tROLE\tACTOR ID\tWHO")
	for _, l := range data.Logins {
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Username, l.Password, l.Role, l.ActorID, l.Who)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	sam, robin := data.Clients[0], data.Clients[1]
	w.printf("\nWhat to try (with curl and jq, against careflow serve on 127.0.0.1:8080):\n")
	w.printf("  # sign in as Dr Lind\n")
	w.printf("  TOKEN=$(curl -s -X POST http://127.0.0.1:8080/v1/auth/token -H 'Content-Type: application/json' \\\n")
	w.printf("    -d '{\"username\":\"%s\",\"password\":\"%s\"}' | jq -r .access_token)\n", demoProviderUser, demoPassword)
	w.printf("  # her inbox: Sam's PHQ-9 with item 9 above 0 is an urgent risk flag\n")
	w.printf("  curl -s -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8080/v1/providers/%s/inbox | jq\n", data.Providers[0])
	w.printf("  # Sam's weekly sessions (the first is active, three more follow)\n")
	w.printf("  curl -s -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8080/v1/clients/%s/sessions | jq\n", sam.ID)
	w.printf("  # Robin's first session: a PHQ-9 with feedback and a comment thread\n")
	w.printf("  curl -s -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8080/v1/sessions/%s | jq\n", robin.Sessions[0])
	w.printf("  # sign in as %s1 (Sam) to answer the open GAD-7, or as %s to read the audit trail\n", demoClientUser, demoAuditorUser)
	w.printf("  # load: careflow bench --url http://127.0.0.1:8080 --clients 32 --duration 20s\n")
	return w.err
}

// errWriter keeps the first write error so a printout checks it once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { _, _ = fmt.Fprintf(e, format, args...) }
