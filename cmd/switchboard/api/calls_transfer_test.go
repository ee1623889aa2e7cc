package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agents"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// scriptedTransfers stands in for the hub (whose transfers webrtc/agents tests with real
// agents and media): it records each request and refuses with the code it is given.
type scriptedTransfers struct {
	mu     sync.Mutex
	refuse string // a signal code; "" accepts
	got    []string
}

func (s *scriptedTransfers) Transfer(_ context.Context, callID, by, to, mode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, strings.Join([]string{callID, by, to, mode}, " "))
	if s.refuse != "" {
		return &agents.TransferError{Code: s.refuse, Message: "refused: " + s.refuse}
	}
	return nil
}

func (s *scriptedTransfers) ConsultAction(ctx context.Context, callID, by, action string) error {
	return s.Transfer(ctx, callID, by, "action:"+action, "")
}

// TestTransferRoute covers the answers of POST /api/calls/{id}/transfer: 202 for the admin
// and the agent on its call, each refusal of the hub with its status and code, and the
// route's own checks (body, unknown or ended call, token).
func TestTransferRoute(t *testing.T) {
	redis := redistest.NewServer(t)
	rig := newRouteRig(t, redis.URL())
	st, log, ctx := rig.st, rig.log, context.Background()
	tr := &scriptedTransfers{}
	srv := serve(t, Deps{Store: st, AdminToken: token, Log: log, Agents: st, Transfers: tr})
	annToken := rig.signUp(t, "ann", "Ann")
	newCall := func(s call.State) string {
		id := store.NewCallID()
		if _, err := st.Apply(ctx, call.Event{ID: "e-" + id, CallID: id, State: s, Direction: call.Inbound, Agent: "ann"}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	post := func(bearer, id, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/calls/"+id+"/transfer", strings.NewReader(body))
		code, _, raw := send(t, req, bearer)
		var out struct {
			Error Error `json:"error"`
		}
		_ = json.Unmarshal([]byte(raw), &out)
		return code, out.Error.Code
	}

	live := newCall(call.InProgress)
	if code, _ := post(token, live, `{"to":"agent:bob","mode":"blind"}`); code != http.StatusAccepted {
		t.Fatalf("admin transfer: %d", code)
	}
	if code, _ := post(annToken, live, `{"to":"agent:bob"}`); code != http.StatusAccepted {
		t.Fatalf("agent's own transfer: %d", code)
	}
	if code, _ := post(annToken, live, `{"action":"complete"}`); code != http.StatusAccepted {
		t.Fatalf("agent's warm transfer completed: %d", code)
	}
	if want := []string{live + "  agent:bob blind", live + " ann agent:bob blind", live + " ann action:complete "}; strings.Join(tr.got, "|") != strings.Join(want, "|") {
		t.Fatalf("hub asked %q, want %q (the admin for whoever has the call; mode blind by default)", tr.got, want)
	}

	for _, tt := range []struct {
		refuse, bearer string
		status         int
		code           string
	}{
		{signal.CodeUnknownAgent, token, http.StatusNotFound, "unknown_agent"},
		{signal.CodeTargetOffline, token, http.StatusConflict, "target_offline"},
		{signal.CodeTargetBusy, annToken, http.StatusConflict, "target_busy"},
		{signal.CodeTargetUnavailable, token, http.StatusConflict, "target_unavailable"},
		{signal.CodeNotImplemented, token, http.StatusNotImplemented, "not_implemented"},
		{signal.CodeBadRequest, token, http.StatusBadRequest, codeInvalid},
		{signal.CodeNoCall, token, http.StatusConflict, codeConflict},
		{signal.CodeNoCall, annToken, http.StatusForbidden, codeForbidden},
		{signal.CodeRinging, token, http.StatusConflict, codeConflict},
	} {
		tr.refuse = tt.refuse
		if status, code := post(tt.bearer, live, `{"to":"agent:bob","mode":"blind"}`); status != tt.status || code != tt.code {
			t.Errorf("refused with %s: %d %s, want %d %s", tt.refuse, status, code, tt.status, tt.code)
		}
	}
	tr.refuse = ""
	for _, body := range []string{``, `{}`, `{"to":""}`, `{"to":"agent:bob","extra":1}`, `[1]`,
		`{"action":"shout"}`, `{"action":"cancel","to":"agent:bob"}`, `{"action":"cancel","mode":"warm"}`} {
		if status, code := post(token, live, body); status != http.StatusBadRequest || code != codeInvalid {
			t.Errorf("body %q: %d %s, want 400 invalid", body, status, code)
		}
	}
	if status, _ := post(token, store.NewCallID(), `{"to":"agent:bob"}`); status != http.StatusNotFound {
		t.Errorf("unknown call: %d, want 404", status)
	}
	if status, _ := post(token, newCall(call.Completed), `{"to":"agent:bob"}`); status != http.StatusConflict {
		t.Errorf("ended call: %d, want 409", status)
	}
	if status, _ := post("wrong", live, `{"to":"agent:bob"}`); status != http.StatusUnauthorized {
		t.Errorf("bad token: %d, want 401", status)
	}
	redis.Stop()
	if status, _ := post(token, live, `{"to":"agent:bob"}`); status != http.StatusServiceUnavailable {
		t.Errorf("Redis down: %d, want 503", status)
	}
}
