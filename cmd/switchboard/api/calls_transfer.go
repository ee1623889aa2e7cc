package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/webrtc/agents"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// callTransferer hands a call to another agent, as the softphone's transfer does;
// *agents.Hub implements it.
type callTransferer interface {
	Transfer(ctx context.Context, callID, by, to, mode string) error
	ConsultAction(ctx context.Context, callID, by, action string) error
}

// Codes of a refused transfer: the softphone's codes (package signal), with their statuses.
const (
	codeUnknownAgent      = signal.CodeUnknownAgent
	codeTargetOffline     = signal.CodeTargetOffline
	codeTargetBusy        = signal.CodeTargetBusy
	codeTargetUnavailable = signal.CodeTargetUnavailable
	codeNotImplemented    = signal.CodeNotImplemented
)

// transferCodes maps a refusal from the hub to the API's code for it.
var transferCodes = map[string]string{
	signal.CodeUnknownAgent:      codeUnknownAgent,
	signal.CodeTargetOffline:     codeTargetOffline,
	signal.CodeTargetBusy:        codeTargetBusy,
	signal.CodeTargetUnavailable: codeTargetUnavailable,
	signal.CodeNotImplemented:    codeNotImplemented,
	signal.CodeBadRequest:        codeInvalid,
	signal.CodeNoCall:            codeConflict,
	signal.CodeBusy:              codeConflict, // a consult is going already
	signal.CodeRinging:           codeConflict, // the consulted agent has not answered yet
}

// HandleTransfer hands a live call to another agent: {"to":"agent:bob","mode":"blind"} (mode
// defaults to blind; "warm" starts a consult), or to a number, blind ({"to":"+15551234567"}), or takes a warm transfer's next step:
// {"action":"complete"|"cancel"|"conference"}. 202 with the call once the target rings (a
// blind transfer's agent is released) or the step is taken; 400 for a body it cannot read,
// 403 for another agent's call, 404 for an unknown call or agent, 409 (with target_offline,
// target_busy, target_unavailable, ringing or conflict) when the target cannot take it, the
// call has no agent or no consult, 501 for a warm transfer to a number, 503 when storage
// does not answer.
func HandleTransfer(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		if d.Transfers == nil {
			return fail(c, d.Log, errorf(codeUnavailable, "transfers are not available on this server"))
		}
		var body struct {
			To     string `json:"to"`
			Mode   string `json:"mode"`
			Action string `json:"action"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 4<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil || (body.To == "") == (body.Action == "") || body.Action != "" && body.Mode != "" {
			return fail(c, d.Log, errorf(codeInvalid, `want {"to":"agent:bob","mode":"blind"} or {"action":"complete"}`))
		}
		if a := body.Action; a != "" && a != "complete" && a != "cancel" && a != "conference" {
			return fail(c, d.Log, errorf(codeInvalid, `action must be "complete", "cancel" or "conference"`))
		}
		if body.Mode == "" {
			body.Mode = signal.TransferBlind
		}
		ctx := c.Request().Context()
		got, err := d.Store.Call(ctx, c.Param("id"))
		if err != nil {
			return fail(c, d.Log, err)
		}
		if got.State.Terminal() {
			return fail(c, d.Log, errorf(codeConflict, "the call has ended already ("+got.State.String()+")"))
		}
		agent := agentOf(c)
		if body.Action != "" {
			err = d.Transfers.ConsultAction(ctx, got.ID, agent, body.Action)
		} else {
			err = d.Transfers.Transfer(ctx, got.ID, agent, body.To, body.Mode)
		}
		var te *agents.TransferError
		switch {
		case err == nil:
		case errors.As(err, &te) && te.Code == signal.CodeNoCall && agent != "":
			// The agent side's record of who has the call (its offer) is the one that counts:
			// after a transfer it is no longer the call record's first agent.
			return fail(c, d.Log, errorf(codeForbidden, "this call is not yours"))
		case errors.As(err, &te):
			code, ok := transferCodes[te.Code]
			if !ok {
				code = codeConflict
			}
			return fail(c, d.Log, errorf(code, te.Message))
		default:
			return fail(c, d.Log, err)
		}
		return c.JSON(http.StatusAccepted, got)
	}
}
