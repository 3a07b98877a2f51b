package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
)

// careDay is the unit of durationDays.
const careDay = 24 * time.Hour

// maxDurationDays bounds durationDays before it becomes a duration.
const maxDurationDays = 3660

type scheduleRequest struct {
	ClientID         string    `json:"clientId"`
	ClinicID         string    `json:"clinicId"`
	ProviderID       string    `json:"providerId"`
	Title            string    `json:"title"`
	Description      string    `json:"description"`
	StartsAt         time.Time `json:"startsAt"`
	DurationDays     int       `json:"durationDays"`
	Repeat           int       `json:"repeat"`
	BookIDs          []string  `json:"bookIds"`
	DesignPlanID     string    `json:"designPlanId"`
	RemindDaysBefore []int     `json:"remindDaysBefore"`
}

func durationOf(days int, field string) (time.Duration, error) {
	if days < 0 || days > maxDurationDays {
		return 0, domain.Validation("invalid-duration", field, "must be between 0 (the default, a week) and %d days", maxDurationDays)
	}
	return time.Duration(days) * careDay, nil
}

// scheduleSessions schedules one session, a repeating series, or the
// sessions of a design plan (designPlanId, which brings its own titles and
// homework).
func (c *careRoutes) scheduleSessions(w http.ResponseWriter, r *http.Request) {
	m, err := CommandMeta(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	var req scheduleRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	length, err := durationOf(req.DurationDays, "durationDays")
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if req.ClinicID != "" {
		// The clinic is the client's; naming another is naming a client
		// that is not there.
		facts, err := c.cfg.Directory.ClientFacts(r.Context(), req.ClientID)
		if err != nil && domain.KindOf(err) != domain.KindNotFound {
			WriteError(w, r, err)
			return
		}
		if err != nil || facts.ClinicID != req.ClinicID {
			WriteError(w, r, domain.NotFound("client-not-found", "no such client in that clinic"))
			return
		}
	}
	var out commands.Scheduled
	if req.DesignPlanID != "" {
		var errs domain.ValidationErrors
		for field, set := range map[string]bool{"title": req.Title != "", "description": req.Description != "",
			"repeat": req.Repeat != 0, "bookIds": len(req.BookIDs) > 0} {
			if set {
				errs = append(errs, domain.Validation("excluded-by-design-plan", field, "a design plan sets this itself"))
			}
		}
		if err := errs.Err(); err != nil {
			WriteError(w, r, err)
			return
		}
		out, err = c.cfg.Commands.ApplyDesignPlan(r.Context(), m, commands.ApplyDesignPlan{
			ClientID: req.ClientID, ProviderID: req.ProviderID, PlanID: req.DesignPlanID, Start: req.StartsAt,
			Length: length, Reminders: req.RemindDaysBefore,
		})
	} else {
		out, err = c.cfg.Commands.ScheduleSession(r.Context(), m, commands.ScheduleSession{
			ClientID: req.ClientID, ProviderID: req.ProviderID, Title: req.Title, Description: req.Description,
			Start: req.StartsAt, Length: length, Repeat: req.Repeat, Homework: req.BookIDs, Reminders: req.RemindDaysBefore,
		})
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	body := commandAnswer{Sessions: make([]scheduledSession, 0, len(out.Sessions))}
	ids := map[string]string{}
	for i, s := range out.Sessions {
		if i == 0 {
			ids["sessionId"] = s.ID
		}
		body.Sessions = append(body.Sessions, scheduledSession{ID: s.ID, StartsAt: s.Start.UTC(), EndsAt: s.End.UTC()})
	}
	body.CommandResponse = careCommandResponse(ids, out.Result)
	writeCommandBody(w, http.StatusCreated, out.Result, body)
}

type assignRequest struct {
	BookID           string    `json:"bookId"`
	Due              time.Time `json:"due"`
	RemindDaysBefore []int     `json:"remindDaysBefore"`
}

func (c *careRoutes) assignHomework(w http.ResponseWriter, r *http.Request) {
	var req assignRequest
	c.sessionCommand(w, r, &req, func(m commands.Meta, sessionID string) (int, map[string]string, commands.Result, error) {
		out, err := c.cfg.Commands.AssignHomework(r.Context(), m, commands.AssignHomework{
			SessionID: sessionID, BookID: req.BookID, Due: req.Due, Reminders: req.RemindDaysBefore,
		})
		if err == nil && out.ID != "" {
			// The stored assignment belongs to this session for good: the
			// next command on it (usually the client's start, moments
			// later) finds its session here instead of waiting for the
			// assignment index to catch up (that wait doubled the start's
			// latency under load).
			c.cache.assignments.put(out.ID, sessionID)
		}
		return http.StatusCreated, map[string]string{"assignmentId": out.ID}, out.Result, err
	})
}

type sessionReasonRequest struct {
	Reason string `json:"reason"`
}

func (c *careRoutes) closeSession(w http.ResponseWriter, r *http.Request) {
	var req sessionReasonRequest
	c.sessionCommand(w, r, &req, func(m commands.Meta, sessionID string) (int, map[string]string, commands.Result, error) {
		res, err := c.cfg.Commands.CloseSession(r.Context(), m, commands.CloseSession{SessionID: sessionID, Reason: req.Reason})
		return http.StatusOK, nil, res, err
	})
}

func (c *careRoutes) cancelSession(w http.ResponseWriter, r *http.Request) {
	var req sessionReasonRequest
	c.sessionCommand(w, r, &req, func(m commands.Meta, sessionID string) (int, map[string]string, commands.Result, error) {
		res, err := c.cfg.Commands.CancelSession(r.Context(), m, commands.CancelSession{SessionID: sessionID, Reason: req.Reason})
		return http.StatusOK, nil, res, err
	})
}

// activateSession makes a due session active now rather than when the time
// reactor gets to it (a provider starting the week by hand). The body is
// empty or {}.
func (c *careRoutes) activateSession(w http.ResponseWriter, r *http.Request) {
	m, err := careMeta(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if r.ContentLength != 0 {
		var empty struct{}
		if err := DecodeJSON(w, r, &empty); err != nil {
			WriteError(w, r, err)
			return
		}
	}
	res, err := c.cfg.Commands.ActivateSession(r.Context(), m, commands.ActivateSession{SessionID: r.PathValue("sessionId")})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteCommandResult(w, http.StatusOK, nil, res)
}

type rescheduleRequest struct {
	StartsAt     time.Time `json:"startsAt"`
	DurationDays int       `json:"durationDays"`
}

func (c *careRoutes) rescheduleSession(w http.ResponseWriter, r *http.Request) {
	var req rescheduleRequest
	c.sessionCommand(w, r, &req, func(m commands.Meta, sessionID string) (int, map[string]string, commands.Result, error) {
		length, err := durationOf(req.DurationDays, "durationDays")
		if err != nil {
			return 0, nil, commands.Result{}, err
		}
		res, err := c.cfg.Commands.RescheduleSession(r.Context(), m, commands.RescheduleSession{
			SessionID: sessionID, Start: req.StartsAt, Length: length,
		})
		return http.StatusOK, nil, res, err
	})
}

type postTextRequest struct {
	Text string `json:"text"`
}

func (c *careRoutes) postMessage(w http.ResponseWriter, r *http.Request) {
	var req postTextRequest
	c.sessionCommand(w, r, &req, func(m commands.Meta, sessionID string) (int, map[string]string, commands.Result, error) {
		out, err := c.cfg.Commands.PostMessage(r.Context(), m, commands.PostMessage{SessionID: sessionID, Text: req.Text})
		return http.StatusCreated, map[string]string{"messageId": out.ID}, out.Result, err
	})
}

func (c *careRoutes) postDiscussion(w http.ResponseWriter, r *http.Request) {
	var req postTextRequest
	c.sessionCommand(w, r, &req, func(m commands.Meta, sessionID string) (int, map[string]string, commands.Result, error) {
		out, err := c.cfg.Commands.PostDiscussion(r.Context(), m, commands.PostDiscussion{SessionID: sessionID, Text: req.Text})
		return http.StatusCreated, map[string]string{"discussionId": out.ID}, out.Result, err
	})
}

func (c *careRoutes) writeNote(w http.ResponseWriter, r *http.Request) {
	var req postTextRequest
	c.sessionCommand(w, r, &req, func(m commands.Meta, sessionID string) (int, map[string]string, commands.Result, error) {
		out, err := c.cfg.Commands.WriteNote(r.Context(), m, commands.WriteNote{SessionID: sessionID, Text: req.Text})
		return http.StatusCreated, map[string]string{"noteId": out.ID}, out.Result, err
	})
}

// sessionCommand runs a command on the session the path names: meta (with
// If-Match), body, then run. The command authorizes the actor on the
// session itself.
func (c *careRoutes) sessionCommand(w http.ResponseWriter, r *http.Request, req any,
	run func(m commands.Meta, sessionID string) (int, map[string]string, commands.Result, error)) {
	m, err := careMeta(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if err := DecodeJSON(w, r, req); err != nil {
		WriteError(w, r, err)
		return
	}
	status, ids, res, err := run(m, r.PathValue("sessionId"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteCommandResult(w, status, ids, res)
}

// assignmentCommand is sessionCommand for a command on the assignment the
// path names: the assignment is resolved to its session first. Whether
// the actor may act on it is the command's decision; an assignment the
// actor may not see is not found.
func (c *careRoutes) assignmentCommand(w http.ResponseWriter, r *http.Request, req any,
	run func(m commands.Meta, sessionID, assignmentID string) (int, map[string]string, commands.Result, error)) {
	m, err := careMeta(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if req != nil {
		if err := DecodeJSON(w, r, req); err != nil {
			WriteError(w, r, err)
			return
		}
	}
	assignmentID := r.PathValue("assignmentId")
	sessionID, err := c.assignmentSession(r, assignmentID)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	status, ids, res, err := run(m, sessionID, assignmentID)
	if err != nil {
		err = asAssignmentNotFound(err)
		WriteError(w, r, err)
		return
	}
	WriteCommandResult(w, status, ids, res)
}

func (c *careRoutes) startAssignment(w http.ResponseWriter, r *http.Request) {
	c.assignmentCommand(w, r, nil, func(m commands.Meta, sessionID, assignmentID string) (int, map[string]string, commands.Result, error) {
		res, err := c.cfg.Commands.StartAssignment(r.Context(), m, commands.StartAssignment{SessionID: sessionID, AssignmentID: assignmentID})
		return http.StatusOK, nil, res, err
	})
}

type responsesRequest struct {
	Answers []books.Answer `json:"answers"`
}

// submitResponses completes an assignment with the client's answers and
// answers with the score: total, severity and the flags raised.
func (c *careRoutes) submitResponses(w http.ResponseWriter, r *http.Request) {
	m, err := careMeta(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	var req responsesRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	assignmentID := r.PathValue("assignmentId")
	sessionID, err := c.assignmentSession(r, assignmentID)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out, err := c.cfg.Commands.CompleteAssignment(r.Context(), m, commands.CompleteAssignment{
		SessionID: sessionID, AssignmentID: assignmentID, Answers: req.Answers,
	})
	if err != nil {
		err = asAssignmentNotFound(err)
		WriteError(w, r, err)
		return
	}
	body := responsesAnswer{CommandResponse: careCommandResponse(nil, out.Result), Scored: out.Scored, Flags: []books.Flag{}}
	if out.Scored {
		total := out.Score.Total
		body.Score, body.Severity = &total, out.Score.Severity
		if out.Score.Flags != nil {
			body.Flags = out.Score.Flags
		}
	}
	writeCommandBody(w, http.StatusOK, out.Result, body)
}

func (c *careRoutes) giveFeedback(w http.ResponseWriter, r *http.Request) {
	var req postTextRequest
	c.assignmentCommand(w, r, &req, func(m commands.Meta, sessionID, assignmentID string) (int, map[string]string, commands.Result, error) {
		out, err := c.cfg.Commands.GiveFeedback(r.Context(), m, commands.GiveFeedback{
			SessionID: sessionID, AssignmentID: assignmentID, Text: req.Text,
		})
		return http.StatusCreated, map[string]string{"feedbackId": out.ID}, out.Result, err
	})
}

type feedbackCommentRequest struct {
	FeedbackID string `json:"feedbackId"`
	Text       string `json:"text"`
}

func (c *careRoutes) postComment(w http.ResponseWriter, r *http.Request) {
	var req feedbackCommentRequest
	c.assignmentCommand(w, r, &req, func(m commands.Meta, sessionID, assignmentID string) (int, map[string]string, commands.Result, error) {
		out, err := c.cfg.Commands.CommentOnFeedback(r.Context(), m, commands.CommentOnFeedback{
			SessionID: sessionID, AssignmentID: assignmentID, FeedbackID: req.FeedbackID, Text: req.Text,
		})
		return http.StatusCreated, map[string]string{"commentId": out.ID}, out.Result, err
	})
}

// asAssignmentNotFound names an assignment's session not being found (or
// not visible to the actor) as the assignment not being found: the caller
// named an assignment, not a session.
func asAssignmentNotFound(err error) error {
	var de *domain.Error
	if errors.As(err, &de) && de.Kind == domain.KindNotFound && de.Slug == "session-not-found" {
		return careAssignmentNotFound()
	}
	return err
}
