package agents

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// wrapUp saves the agent's notes and disposition for one of its calls (the one it is on, or
// one it had, until the wrap-up window after its end): wrapup-saved, or an error with a code
// (invalid, not_found, closed, unavailable) and the call's id. The rules are the calls API's
// (cmd/switchboard/api HandleWrapUp): the same call record, the same checks.
func (s *session) wrapUp(ctx context.Context, callID, notes, disposition string) {
	w := call.WrapUp{Notes: notes, Disposition: disposition, WrappedUpAt: time.Now().UTC().Truncate(time.Millisecond),
		WrappedUpBy: "agent:" + s.agent.ID}
	if err := s.hub.opts.Dispositions.Check(w); err != nil {
		s.refused(signal.CodeInvalid, err.Error(), clip(callID, 64), err)
		return
	}
	if callID == "" {
		s.sendError(signal.CodeNotFound, "say which call the wrap-up is for", "")
		return
	}
	c, err := s.hub.st.Call(ctx, callID)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && !c.HandledBy(s.agent.ID)):
		s.sendError(signal.CodeNotFound, "no such call of yours", clip(callID, 64))
		return
	case err != nil:
		s.refused(signal.CodeUnavailable, "the wrap-up could not be saved now; try again", callID, err)
		return
	case !c.WrapUpOpen(time.Now(), s.hub.opts.WrapUpWindow):
		s.sendError(signal.CodeClosed, "this call's wrap-up has closed; ask an admin to change it", callID)
		return
	}
	saved, err := s.hub.st.SaveWrapUp(ctx, callID, w)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.sendError(signal.CodeNotFound, "no such call of yours", callID)
	case errors.Is(err, store.ErrWrapUpLimit):
		s.sendError(signal.CodeClosed, "this call's wrap-up was changed too many times", callID)
	case err != nil:
		s.refused(signal.CodeUnavailable, "the wrap-up could not be saved now; try again", callID, err)
	default:
		s.send(signal.WrapUpSavedMessage{Type: signal.TypeWrapUpSaved, CallID: callID, Disposition: saved.Disposition,
			WrappedUpAt: saved.WrappedUpAt})
	}
}
