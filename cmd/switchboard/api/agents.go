package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc/agents"
)

// agentStore is what the agent routes need from the store; *agentdb.Store implements it.
type agentStore interface {
	PutAgent(ctx context.Context, id, name, token string, rotate bool) (agentdb.Agent, bool, error)
	DeleteAgent(ctx context.Context, id string) error
	Agents(ctx context.Context) ([]agentdb.Agent, error)
	Presences(ctx context.Context, ids []string) ([]agentdb.Presence, error)
	AuthenticateAgent(ctx context.Context, token string) (agentdb.Agent, error)
	SetAgentRole(ctx context.Context, id string, role agentdb.Role) error
	Audited(ctx context.Context, a store.Audit) error
}

// agentDialer places a call for an agent, as its softphone would; *agents.Hub implements it.
type agentDialer interface {
	Dial(ctx context.Context, agent, to string) (string, error)
}

// ownCalls keeps the calls an agent may see: its own. The admin sees every call.
func ownCalls(c echo.Context, calls []call.Call) []call.Call {
	agent := agentOf(c)
	if agent == "" {
		return calls
	}
	out := calls[:0:0]
	for _, cl := range calls {
		if cl.HandledBy(agent) {
			out = append(out, cl)
		}
	}
	return out
}

type agentJSON struct {
	agentdb.Agent
	Presence presenceJSON `json:"presence"`
}

type presenceJSON struct {
	State    agentdb.Availability `json:"state"`
	Since    *time.Time           `json:"since,omitempty"`
	Until    *time.Time           `json:"until,omitempty"`
	Call     string               `json:"call,omitempty"`
	Ringing  string               `json:"ringing,omitempty"`
	Instance string               `json:"instance,omitempty"`
}

func presenceOf(p agentdb.Presence) presenceJSON {
	j := presenceJSON{State: p.State, Call: p.Call, Ringing: p.Ringing, Instance: p.Instance}
	if !p.Since.IsZero() {
		j.Since = &p.Since
	}
	if !p.Until.IsZero() {
		j.Until = &p.Until
	}
	return j
}

// HandlePutAgent creates an agent or renames it, and sets its role when "role" is given (a
// new agent without one is an agent). The answer carries a login token when the
// agent is created or rotate_token is set, and never otherwise: only the token's hash is kept.
func HandlePutAgent(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("id")
		if !agentdb.ValidAgentID(id) {
			return fail(c, d.Log, errorf(codeInvalid, "an agent id is 1 to 63 of a-z, 0-9 and '-', starting with a letter or digit"))
		}
		var body struct {
			Name   string `json:"name"`
			Rotate bool   `json:"rotate_token"`
			Role   string `json:"role"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 4<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return fail(c, d.Log, errorf(codeInvalid, `want {"name":"Ann Smith"} and optionally "rotate_token":true and "role":"agent"|"supervisor"`))
		}
		role := agentdb.ParseRole(body.Role)
		if body.Role != "" && role == agentdb.RoleUnknown {
			return fail(c, d.Log, &Error{Code: codeInvalid, Message: "invalid agent",
				Fields: []FieldError{{Field: "role", Message: "want agent or supervisor"}}})
		}
		body.Name = strings.TrimSpace(body.Name)
		if body.Name == "" {
			body.Name = id
		}
		if utf8.RuneCountInString(body.Name) > 100 || !utf8.ValidString(body.Name) {
			return fail(c, d.Log, errorf(codeInvalid, "name: at most 100 characters"))
		}
		token := agentdb.NewAgentToken(id)
		ctx := c.Request().Context()
		a, created, err := d.Agents.PutAgent(ctx, id, body.Name, token, body.Rotate)
		if err != nil {
			return fail(c, d.Log, err)
		}
		detail := "renamed to " + body.Name
		switch {
		case created:
			detail = "created as " + body.Name
		case body.Rotate:
			detail += "; token rotated"
		}
		if role != agentdb.RoleUnknown && role != a.Role {
			if err := d.Agents.SetAgentRole(ctx, id, role); err != nil {
				return fail(c, d.Log, err)
			}
			detail += "; role " + role.String()
			a.Role = role
		}
		// The actor is who authenticated, seen from the connection: never X-Forwarded-For,
		// which is whatever the client says.
		if err := d.Agents.Audited(ctx, store.Audit{Actor: actor(c), Action: "agent.put", Target: id, Detail: detail}); err != nil {
			d.Log.Warn("agent change not audited", "agent", id, "err", err)
		}
		out := map[string]any{"agent": a}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		if created || body.Rotate {
			out["token"] = token
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(status, out)
	}
}

// HandleListAgents lists every agent with its presence.
func HandleListAgents(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		agents, err := d.Agents.Agents(ctx)
		if err != nil {
			return fail(c, d.Log, err)
		}
		ids := make([]string, len(agents))
		for i, a := range agents {
			ids[i] = a.ID
		}
		ps, err := d.Agents.Presences(ctx, ids)
		if err != nil {
			return fail(c, d.Log, err)
		}
		out := make([]agentJSON, len(agents))
		for i, a := range agents {
			out[i] = agentJSON{Agent: a, Presence: presenceOf(ps[i])}
		}
		return c.JSON(http.StatusOK, map[string]any{"agents": out})
	}
}

// handleDialForAgent places an outbound call for an agent: the agent itself (its own token),
// or the admin naming the agent. The agent must be signed in to its softphone, which shows the
// call and carries its audio; the answer is 201 with the call once a carrier took it.
func handleDialForAgent(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body struct {
			To    string `json:"to"`
			Agent string `json:"agent"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 4<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return fail(c, d.Log, errorf(codeInvalid, `want {"to":"+15551234567"}`))
		}
		agent := agentOf(c)
		switch {
		case agent != "" && body.Agent != "" && body.Agent != agent:
			return fail(c, d.Log, errorf(codeInvalid, "an agent places calls for itself only"))
		case agent == "":
			agent = body.Agent
		}
		if agent == "" {
			return fail(c, d.Log, errorf(codeInvalid, `name the agent who takes the call: {"to":"...","agent":"ann"}`))
		}
		ctx := c.Request().Context()
		id, err := d.Dialer.Dial(ctx, agent, body.To)
		var placeErr *agents.PlaceError
		switch {
		case err == nil:
		case errors.Is(err, agentdb.ErrAgentOffline):
			return fail(c, d.Log, errorf(codeConflict, "the agent is not signed in to the softphone"))
		case errors.Is(err, agentdb.ErrAgentBusy):
			return fail(c, d.Log, errorf(codeConflict, "the agent is on a call"))
		case errors.Is(err, agentdb.ErrAgentRinging):
			return fail(c, d.Log, errorf(codeConflict, "a call is ringing for the agent"))
		case errors.As(err, &placeErr):
			return fail(c, d.Log, errorf(codeCarrier, "the call could not be placed: "+placeErr.Reason))
		case errors.Is(err, agents.ErrBadNumber):
			return fail(c, d.Log, errorf(codeInvalid, err.Error()))
		default:
			return fail(c, d.Log, err)
		}
		placed, err := d.Store.Call(ctx, id)
		if err != nil {
			return fail(c, d.Log, err)
		}
		return c.JSON(http.StatusCreated, placed)
	}
}
