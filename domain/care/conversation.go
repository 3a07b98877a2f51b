package care

import (
	"slices"
	"time"

	"github.com/careflow/careflow/domain"
)

// PostMessage writes in the session's message center: the session's client
// or a provider (the handler checks the provider is on the care team).
func (s *Session) PostMessage(messageID string, author domain.Actor, body string, now time.Time) error {
	if err := s.mustBeOpen(); err != nil {
		return err
	}
	switch author.Role {
	case domain.RoleClient:
		if author.ID != s.st.ClientID {
			return domain.NotFound("session-not-found", "no such session")
		}
	case domain.RoleProvider:
	default:
		return domain.Forbidden("forbidden", "a %s cannot post messages", author.Role)
	}
	body, err := s.newPost("messageId", messageID, s.st.Messages, body)
	if err != nil {
		return err
	}
	s.record(SessionMessagePosted{
		SessionID: s.st.ID, ClientID: s.st.ClientID, MessageID: messageID,
		AuthorID: author.ID, AuthorRole: author.Role, Text: body, At: instant(now),
	})
	return nil
}

// PostDiscussion writes in the care team's discussion: providers only.
func (s *Session) PostDiscussion(postID string, author domain.Actor, body string, now time.Time) error {
	if err := s.mustBeOpen(); err != nil {
		return err
	}
	if author.Role != domain.RoleProvider {
		return domain.Forbidden("forbidden", "only providers take part in the discussion")
	}
	body, err := s.newPost("postId", postID, s.st.Discussion, body)
	if err != nil {
		return err
	}
	s.record(SessionDiscussionPosted{
		SessionID: s.st.ID, ClientID: s.st.ClientID, PostID: postID, AuthorID: author.ID, Text: body, At: instant(now),
	})
	return nil
}

// WriteNote keeps a provider's reflection on the session. Unlike other
// writing it is accepted in every state: reflecting on a session that has
// closed (or was cancelled) is what notes are for.
func (s *Session) WriteNote(noteID string, author domain.Actor, body string, now time.Time) error {
	if err := s.mustExist(); err != nil {
		return err
	}
	if author.Role != domain.RoleProvider {
		return domain.Forbidden("forbidden", "only providers write notes")
	}
	body, err := s.newPost("noteId", noteID, s.st.Notes, body)
	if err != nil {
		return err
	}
	s.record(SessionNoteWritten{
		SessionID: s.st.ID, ClientID: s.st.ClientID, NoteID: noteID, AuthorID: author.ID, Text: body, At: instant(now),
	})
	return nil
}

// newPost checks a new entry's id is fresh and its text is acceptable.
func (s *Session) newPost(field, id string, existing []Post, body string) (string, error) {
	if err := requireID(field, id); err != nil {
		return "", err
	}
	if slices.ContainsFunc(existing, func(p Post) bool { return p.ID == id }) {
		return "", domain.Conflict("post-exists", "%s %s already exists", field, id)
	}
	return text("text", body, true, maxText)
}
