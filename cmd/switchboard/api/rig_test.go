package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/storetest"
)

// routeRig is what the route tests stand on: a store client and its agents' view, in a
// namespace of the test's own, and a silent log.
type routeRig struct {
	rs  *store.Redis
	st  *agentdb.Store
	log *slog.Logger
}

// newRouteRig opens the rig's store on the Redis at url: redistest.URL(t) for the shared
// one, a redistest.NewServer's for a test that stops Redis to see the 503s.
func newRouteRig(t *testing.T, url string) *routeRig {
	t.Helper()
	rs := storetest.Open(t, url, redistest.Namespace(t))
	return &routeRig{rs: rs, st: agentdb.New(rs), log: slog.New(slog.DiscardHandler)}
}

// serve mounts the api with deps on a server of its own, closed when the test ends.
func serve(t *testing.T, deps Deps) *httptest.Server {
	t.Helper()
	e := echo.New()
	mount(e, deps)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

// signUp stores an enabled agent id named name with a new token, and returns the token.
func (r *routeRig) signUp(t *testing.T, id, name string) string {
	t.Helper()
	tok := agentdb.NewAgentToken(id)
	if _, _, err := r.st.PutAgent(t.Context(), id, name, tok, true); err != nil {
		t.Fatal(err)
	}
	return tok
}

// send sends req with bearer as its token and returns the answer's status, its body decoded
// (nil when it is not a JSON object) and its body as it came.
func send(t *testing.T, req *http.Request, bearer string) (int, map[string]any, string) {
	t.Helper()
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out, string(raw)
}
