package api

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/carrier/dispatch"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
)

// TestHangupRoute covers every answer of POST /api/calls/{id}/hangup: 202 with the call once
// the hang-up job is stored (for the admin, and for the agent on its own call), 403 for
// another agent's call, 404 for an unknown one, 409 for one that has ended, 503 without Redis.
func TestHangupRoute(t *testing.T) {
	redis := redistest.NewServer(t)
	rig := newRouteRig(t, redis.URL())
	st, log, ctx := rig.st, rig.log, context.Background()
	reg := carrier.NewRegistry(carrierdb.New(rig.rs), nil, log)
	actions := dispatch.NewActions(dispatch.ActionDeps{Store: carrierdb.New(rig.rs), Registry: reg, Instance: "test"})
	srv := serve(t, Deps{Store: st, AdminToken: token, Log: log, Agents: st, Hangups: actions})

	annToken := rig.signUp(t, "ann", "Ann")
	newCall := func(agent string, s call.State) string {
		id := store.NewCallID()
		if _, err := st.Apply(ctx, call.Event{ID: "e-" + id, CallID: id, State: s, Direction: call.Outbound, Agent: agent,
			Carrier: "tw", CarrierCallID: "CA" + id[2:]}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	post := func(bearer, id string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/calls/"+id+"/hangup", nil)
		code, out, _ := send(t, req, bearer)
		return code, out
	}
	jobStored := func(id, by string) {
		t.Helper()
		j, err := st.JobOf(ctx, store.JobID(store.JobHangup, id))
		if err != nil || j.Kind != store.JobHangup || j.By != by || j.State != "pending" {
			t.Fatalf("hang-up job of %s = %+v, %v; want pending, by %s", id, j, err, by)
		}
	}

	live := newCall("", call.InProgress)
	if code, got := post(token, live); code != http.StatusAccepted || got["id"] != live || got["state"] != "in-progress" {
		t.Fatalf("admin hang-up: %d %v", code, got)
	}
	jobStored(live, "api:admin")
	if code, _ := post(token, live); code != http.StatusAccepted {
		t.Fatalf("second admin hang-up of a live call: %d, want 202 (the same job)", code)
	}

	own := newCall("ann", call.Ringing)
	if code, got := post(annToken, own); code != http.StatusAccepted || got["agent"] != "ann" {
		t.Fatalf("agent's own hang-up: %d %v", code, got)
	}
	jobStored(own, "api:agent:ann")

	other := newCall("bob", call.InProgress)
	if code, got := post(annToken, other); code != http.StatusForbidden {
		t.Fatalf("another agent's call: %d %v, want 403", code, got)
	}
	if _, err := st.JobOf(ctx, store.JobID(store.JobHangup, other)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused hang-up stored a job: %v", err)
	}
	// A supervisor ends anyone's call, from the wallboard.
	supToken := agentdb.NewAgentToken("sue")
	if _, _, err := st.PutAgent(ctx, "sue", "Sue", supToken, true); err != nil {
		t.Fatal(err)
	}
	if err := st.SetAgentRole(ctx, "sue", agentdb.RoleSupervisor); err != nil {
		t.Fatal(err)
	}
	if code, got := post(supToken, other); code != http.StatusAccepted {
		t.Fatalf("a supervisor's hang-up of another agent's call: %d %v, want 202", code, got)
	}
	jobStored(other, "api:supervisor:sue")
	if code, _ := post(token, store.NewCallID()); code != http.StatusNotFound {
		t.Fatalf("unknown call: %d, want 404", code)
	}
	ended := newCall("", call.Completed)
	if code, got := post(token, ended); code != http.StatusConflict {
		t.Fatalf("ended call: %d %v, want 409", code, got)
	}
	if code, _ := post("wrong-token", live); code != http.StatusUnauthorized {
		t.Fatalf("bad token: %d, want 401", code)
	}

	redis.Stop()
	if code, got := post(token, live); code != http.StatusServiceUnavailable {
		t.Fatalf("Redis down: %d %v, want 503", code, got)
	}
}
