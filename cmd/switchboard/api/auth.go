package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/agentdb"
)

// Who may call what. Three kinds of bearer token reach the API: the admin token
// (SWITCHBOARD_ADMIN_TOKEN), a supervisor's agent token and an agent's. Each middleware below
// lets in some of them; a valid token of another kind is 403, anything else 401. Agent tokens
// are checked against Redis on every request (constant time, see agentdb.AuthenticateAgent),
// so a rotated or deleted agent's token is refused at once; the admin token is compared in
// memory first, so the admin keeps the API while Redis is down. docs/security.md has the
// table of routes and roles.

// Caller is who a request authenticated as: the admin, or an agent with its role.
type Caller struct {
	Admin bool
	Agent agentdb.Agent
}

// Staff reports whether the caller may use the console's staff views: the admin or a
// supervisor.
func (c Caller) Staff() bool { return c.Admin || c.Agent.Role == agentdb.RoleSupervisor }

// Name names the caller in job records: "admin", "agent:<id>" or "supervisor:<id>".
func (c Caller) Name() string {
	if c.Admin {
		return "admin"
	}
	return roleOf(c) + ":" + c.Agent.ID
}

const callerKey = "switchboard.caller"

// CallerOf returns who the request authenticated as; the zero Caller when no middleware of
// this package ran.
func CallerOf(c echo.Context) Caller {
	who, _ := c.Get(callerKey).(Caller)
	return who
}

// agentOf returns the agent the request authenticated as, or "" for the admin.
func agentOf(c echo.Context) string { return CallerOf(c).Agent.ID }

// RequireAdmin lets in the admin token only: configuration, agents and the audit log.
func RequireAdmin(d Deps) echo.MiddlewareFunc {
	return require(d, func(who Caller) bool { return who.Admin })
}

// RequireStaff lets in the admin and supervisors: the wallboard and the call history. Other
// packages' staff routes mount with it too.
func RequireStaff(d Deps) echo.MiddlewareFunc {
	return require(d, Caller.Staff)
}

// RequireCaller lets in the admin and every agent with its own token; handlers then restrict
// an agent to its own calls (agentOf says who it is).
func RequireCaller(d Deps) echo.MiddlewareFunc {
	return require(d, func(Caller) bool { return true })
}

func require(d Deps, allowed func(Caller) bool) echo.MiddlewareFunc {
	// Both sides are hashed first so the comparison takes the same time whatever the length of
	// the guess.
	want := sha256.Sum256([]byte(d.AdminToken))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			got, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
			if !ok || got == "" {
				return unauthorized(c)
			}
			var who Caller
			switch {
			case isAdmin(d.AdminToken, want, got):
				who.Admin = true
			case d.Agents == nil:
				return unauthorized(c)
			default:
				a, err := d.Agents.AuthenticateAgent(c.Request().Context(), got)
				if errors.Is(err, agentdb.ErrUnauthorized) {
					return unauthorized(c)
				}
				if err != nil {
					return fail(c, d.Log, err)
				}
				who.Agent = a
			}
			if !allowed(who) {
				return c.JSON(http.StatusForbidden, map[string]*Error{
					"error": errorf(codeForbidden, "this token's role ("+roleOf(who)+") may not use this route")})
			}
			c.Set(callerKey, who)
			return next(c)
		}
	}
}

// StaffToken says who a staff token is, for routes that cannot send a header (the monitor
// WebSocket takes its token in its first message): the caller's Name for the admin or a
// supervisor; agentdb.ErrUnauthorized for a token of nobody; notStaff for an agent's.
func StaffToken(adminToken string, agents interface {
	AuthenticateAgent(ctx context.Context, token string) (agentdb.Agent, error)
}, notStaff error) func(ctx context.Context, token string) (string, error) {
	want := sha256.Sum256([]byte(adminToken))
	return func(ctx context.Context, token string) (string, error) {
		if isAdmin(adminToken, want, token) {
			return Caller{Admin: true}.Name(), nil
		}
		a, err := agents.AuthenticateAgent(ctx, token)
		if err != nil {
			return "", err
		}
		if who := (Caller{Agent: a}); who.Staff() {
			return who.Name(), nil
		}
		return "", notStaff
	}
}

func isAdmin(token string, want [sha256.Size]byte, got string) bool {
	sum := sha256.Sum256([]byte(got))
	return token != "" && subtle.ConstantTimeCompare(sum[:], want[:]) == 1
}

func roleOf(who Caller) string {
	if who.Admin {
		return "admin"
	}
	return who.Agent.Role.String()
}

// HandleMe says who the token is, so the console shows the views its role may use:
// {"role":"admin"}, or {"role":"supervisor"|"agent","id":...,"name":...}.
func HandleMe(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		who := CallerOf(c)
		out := map[string]string{"role": roleOf(who)}
		if !who.Admin {
			out["id"], out["name"] = who.Agent.ID, who.Agent.Name
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, out)
	}
}

// mayRead reports whether the caller may read call c (its record, its recording): the admin
// and supervisors any call, an agent its own.
func mayRead(ec echo.Context, c call.Call) bool {
	who := CallerOf(ec)
	return who.Staff() || c.HandledBy(who.Agent.ID)
}
