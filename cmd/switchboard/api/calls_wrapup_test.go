package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
)

// TestWrapUpRoute covers PUT /api/calls/{id}/wrapup: the agent on its own call (live, and
// just ended) and the admin on any call get 200 and the call shows the wrap-up; another
// agent's call is 404 as for GET; a disposition not in the list, notes too long or a
// malformed body are 400, a huge body 413, the agent after its window 409, and nothing of a
// refused request is stored; without Redis, 503.
func TestWrapUpRoute(t *testing.T) {
	redis := redistest.NewServer(t)
	rig := newRouteRig(t, redis.URL())
	st, log, ctx := rig.st, rig.log, context.Background()
	dispositions, _ := call.ParseDispositions(call.DefaultDispositions)
	srv := serve(t, Deps{Store: st, AdminToken: token, Log: log, Agents: st,
		WrapUps: WrapUps{Dispositions: dispositions, Window: time.Minute}})

	annToken := rig.signUp(t, "ann", "Ann")
	newCall := func(agent string, states ...call.State) string {
		id := store.NewCallID()
		for _, s := range states {
			if _, err := st.Apply(ctx, call.Event{ID: s.String(), CallID: id, State: s, Direction: call.Inbound, Agent: agent,
				Carrier: "tw", CarrierCallID: "CA" + id[2:], From: "+15557654321"}); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	put := func(bearer, id, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/api/calls/"+id+"/wrapup", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		code, out, _ := send(t, req, bearer)
		return code, out
	}
	body := func(notes, disposition string) string {
		b, _ := json.Marshal(map[string]string{"notes": notes, "disposition": disposition})
		return string(b)
	}
	unchanged := func(id string) {
		t.Helper()
		if c, err := st.Call(ctx, id); err != nil || c.WrapUp != (call.WrapUp{}) {
			t.Fatalf("a refused wrap-up was stored on %s: %+v %v", id, c.WrapUp, err)
		}
	}

	ended := newCall("ann", call.InProgress, call.Completed)
	code, got := put(annToken, ended, body("Wants a callback.", "follow-up"))
	if code != http.StatusOK || got["notes"] != "Wants a callback." || got["disposition"] != "follow-up" ||
		got["wrapped_up_by"] != "agent:ann" || got["wrapped_up_at"] == nil {
		t.Fatalf("agent's own ended call: %d %v", code, got)
	}
	if c, _ := st.Call(ctx, ended); c.Disposition != "follow-up" {
		t.Fatalf("stored: %+v", c.WrapUp)
	}
	live := newCall("ann", call.InProgress)
	if code, got := put(annToken, live, body("", "resolved")); code != http.StatusOK || got["disposition"] != "resolved" {
		t.Fatalf("agent's own live call: %d %v", code, got)
	}
	other := newCall("bob", call.InProgress, call.Completed)
	if code, got := put(annToken, other, body("x", "resolved")); code != http.StatusNotFound {
		t.Fatalf("another agent's call: %d %v, want 404", code, got)
	}
	unchanged(other)
	// A call transferred from bob to ann: ann, who has it now, wraps it up.
	transferred := newCall("bob", call.InProgress)
	if _, err := st.Apply(ctx, call.Event{ID: "to-ann", CallID: transferred, Agent: "ann"}); err != nil {
		t.Fatal(err)
	}
	if code, got := put(annToken, transferred, body("taken over from bob", "resolved")); code != http.StatusOK {
		t.Fatalf("the target of a transfer: %d %v, want 200", code, got)
	}
	if code, got := put(token, other, body("Checked by the supervisor.", "spam")); code != http.StatusOK || got["wrapped_up_by"] != "admin" {
		t.Fatalf("admin on any call: %d %v", code, got)
	}

	fresh := newCall("ann", call.InProgress, call.Completed)
	for name, tc := range map[string]struct {
		body  string
		code  int
		field string
	}{
		"disposition not listed": {body("x", "sold"), http.StatusBadRequest, "disposition"},
		"no disposition":         {body("x", ""), http.StatusBadRequest, "disposition"},
		"notes too long":         {body(strings.Repeat("ü", call.MaxNotes+1), "resolved"), http.StatusBadRequest, "notes"},
		"unknown field":          {`{"disposition":"resolved","agent":"bob"}`, http.StatusBadRequest, ""},
		"not JSON":               {`disposition=resolved`, http.StatusBadRequest, ""},
		"huge body":              {body(strings.Repeat("a", 20<<10), "resolved"), http.StatusRequestEntityTooLarge, ""},
	} {
		code, got := put(annToken, fresh, tc.body)
		if code != tc.code {
			t.Errorf("%s: %d %v, want %d", name, code, got, tc.code)
			continue
		}
		if tc.field != "" {
			fields, _ := got["error"].(map[string]any)["fields"].([]any)
			if len(fields) != 1 || fields[0].(map[string]any)["field"] != tc.field {
				t.Errorf("%s: error %v, want it to name %s", name, got, tc.field)
			}
		}
	}
	unchanged(fresh)
	if code, _ := put(annToken, fresh, body(strings.Repeat("ü", call.MaxNotes), "resolved")); code != http.StatusOK {
		t.Fatalf("notes at the bound: %d, want 200", code)
	}
	if code, _ := put(token, store.NewCallID(), body("", "resolved")); code != http.StatusNotFound {
		t.Fatalf("unknown call: %d, want 404", code)
	}
	if code, _ := put("wrong-token", fresh, body("", "resolved")); code != http.StatusUnauthorized {
		t.Fatalf("bad token: %d, want 401", code)
	}

	// The agent's window after the end: on a server whose window is 1 ns, every ended call's
	// has closed. The agent is refused, the admin is not; a live call is still open.
	strict := serve(t, Deps{Store: st, AdminToken: token, Log: log, Agents: st,
		WrapUps: WrapUps{Dispositions: dispositions, Window: time.Nanosecond}})
	closed := newCall("ann", call.InProgress, call.Completed)
	base := srv.URL
	srv.URL = strict.URL
	if code, got := put(annToken, closed, body("late", "resolved")); code != http.StatusConflict {
		t.Fatalf("after the window: %d %v, want 409", code, got)
	}
	unchanged(closed)
	if code, _ := put(token, closed, body("late", "resolved")); code != http.StatusOK {
		t.Fatalf("admin after the window: %d, want 200", code)
	}
	if code, _ := put(annToken, live, body("still on it", "resolved")); code != http.StatusOK {
		t.Fatalf("live call on the strict server: %d, want 200", code)
	}
	srv.URL = base

	redis.Stop()
	if code, got := put(token, live, body("", "resolved")); code != http.StatusServiceUnavailable {
		t.Fatalf("Redis down: %d %v, want 503", code, got)
	}
}
