package agents

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestAllowedOriginsOpenTheSocket: the hub takes the configured origins, and refuses the
// request's own Host as an origin.
func TestAllowedOriginsOpenTheSocket(t *testing.T) {
	h := newTestHub(t, "", func(o *HubOptions) {
		o.PublicURL = "https://voice.example.com"
		o.AllowedOrigins = []string{"https://agents.example.com"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := "ws" + strings.TrimPrefix(h.url, "http") + "/agent/ws"
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, ws, http.Header{"Origin": {"https://agents.example.com"}})
	if err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	conn.Close()
	_, resp, err := websocket.DefaultDialer.DialContext(ctx, ws, http.Header{"Origin": {h.url}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the request's own host as origin: %v %v", err, resp)
	}
}
