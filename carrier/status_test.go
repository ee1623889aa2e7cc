package carrier

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
)

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestClassifyTwilioStatus(t *testing.T) {
	documented := fixture(t, "twilio_call_fetch.json")
	withStatus := func(s string) string {
		return strings.Replace(documented, `"status": "completed"`, `"status": "`+s+`"`, 1)
	}
	live := strings.Replace(withStatus("in-progress"), `"end_time": "Tue, 31 Aug 2010 20:36:44 +0000"`, `"end_time": null`, 1)
	for _, tc := range []struct {
		name     string
		status   int
		body     string
		liveness Liveness
		state    call.State
	}{
		{"documented example: completed", 200, documented, Ended, call.Completed},
		{"in progress", 200, live, Live, call.InProgress},
		{"ringing", 200, withStatus("ringing"), Live, call.Ringing},
		{"queued", 200, withStatus("queued"), Live, call.Queued},
		{"busy", 200, withStatus("busy"), Ended, call.Busy},
		{"no-answer", 200, withStatus("no-answer"), Ended, call.NoAnswer},
		{"canceled", 200, withStatus("canceled"), Ended, call.Canceled},
		{"failed", 200, withStatus("failed"), Ended, call.Failed},
		{"a status Twilio does not have", 200, withStatus("initiated"), LookupFailed, call.Unknown},
		{"an unknown status", 200, withStatus("exploded"), LookupFailed, call.Unknown},
		{"garbage", 200, "<html>hello</html>", LookupFailed, call.Unknown},
		{"empty object", 200, "{}", LookupFailed, call.Unknown},
		{"not found", 404, `{"code":20404,"message":"The requested resource was not found","status":404}`, Gone, call.Unknown},
		{"rate limited", 429, `{"code":20429,"message":"Too Many Requests","status":429}`, LookupFailed, call.Unknown},
		{"server error", 503, `{"status":503,"message":"Try again later"}`, LookupFailed, call.Unknown},
		{"unauthorized", 401, `{"code":20003,"message":"Authenticate","status":401}`, LookupFailed, call.Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ClassifyTwilioStatus(tc.status, []byte(tc.body))
			if got.Liveness != tc.liveness || got.State != tc.state {
				t.Fatalf("got %+v, want %v %v", got, tc.liveness, tc.state)
			}
		})
	}
	got := ClassifyTwilioStatus(200, []byte(documented))
	if want := time.Date(2010, 8, 31, 20, 36, 44, 0, time.UTC); !got.EndedAt.Equal(want) {
		t.Fatalf("end_time %v, want %v", got.EndedAt, want)
	}
}

func TestClassifyTelnyxStatus(t *testing.T) {
	documented := fixture(t, "telnyx_call_status.json")
	alive := strings.Replace(documented, `"is_alive": false`, `"is_alive": true`, 1)
	unanswered := strings.Replace(documented, `"call_duration": 50`, `"call_duration": 0`, 1)
	for _, tc := range []struct {
		name     string
		status   int
		body     string
		liveness Liveness
		answered bool
	}{
		{"documented example: ended after talking", 200, documented, Ended, true},
		{"alive", 200, alive, Live, false},
		{"ended unanswered", 200, unanswered, Ended, false},
		{"no is_alive", 200, `{"data":{"record_type":"call"}}`, LookupFailed, false},
		{"no data", 200, `{"errors":[]}`, LookupFailed, false},
		{"garbage", 200, "not json", LookupFailed, false},
		{"unknown to Telnyx (documented 422)", 422, `{"errors":[{"code":"90015","title":"Invalid Call Control ID"}]}`, Gone, false},
		{"not found", 404, `{"errors":[{"code":"10005","title":"Resource not found"}]}`, Gone, false},
		{"rate limited", 429, `{"errors":[{"code":"10011","title":"Too many requests"}]}`, LookupFailed, false},
		{"server error", 500, ``, LookupFailed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ClassifyTelnyxStatus(tc.status, []byte(tc.body))
			if got.Liveness != tc.liveness || got.Answered != tc.answered || got.State != call.Unknown {
				t.Fatalf("got %+v, want %v answered=%v", got, tc.liveness, tc.answered)
			}
		})
	}
	got := ClassifyTelnyxStatus(200, []byte(documented))
	if want := time.Date(2019, 1, 23, 18, 11, 52, 574e6, time.UTC); !got.EndedAt.Equal(want) {
		t.Fatalf("end_time %v, want %v", got.EndedAt, want)
	}
}

func TestEndingState(t *testing.T) {
	for _, tc := range []struct {
		status CallStatus
		ours   call.State
		want   call.State
	}{
		{CallStatus{Liveness: Ended, State: call.Busy}, call.Ringing, call.Busy},
		{CallStatus{Liveness: Ended, State: call.Completed}, call.Ringing, call.Completed},
		{CallStatus{Liveness: Ended}, call.InProgress, call.Completed},
		{CallStatus{Liveness: Ended, Answered: true}, call.Ringing, call.Completed},
		{CallStatus{Liveness: Ended}, call.Ringing, call.NoAnswer},
		{CallStatus{Liveness: Ended}, call.Initiated, call.NoAnswer},
	} {
		if got := EndingState(tc.status, tc.ours); got != tc.want {
			t.Errorf("EndingState(%+v, %v) = %v, want %v", tc.status, tc.ours, got, tc.want)
		}
	}
}

func TestCallStatusRequests(t *testing.T) {
	ctx := context.Background()
	t.Run("twilio", func(t *testing.T) {
		f := newFakeCarrier(t, reply(http.StatusOK, fixture(t, "twilio_call_fetch.json")))
		got := newTestTwilio(t, f.URL).CallStatus(ctx, "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
		if got.Liveness != Ended || got.State != call.Completed {
			t.Fatalf("status %+v", got)
		}
		r := f.request(t)
		if r.method != http.MethodGet || r.path != "/2010-04-01/Accounts/"+twilioSID+"/Calls/CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json" || r.authorization != twilioBasic {
			t.Fatalf("request %s %s auth %q", r.method, r.path, r.authorization)
		}
	})
	t.Run("telnyx", func(t *testing.T) {
		f := newFakeCarrier(t, reply(http.StatusOK, fixture(t, "telnyx_call_status.json")))
		got := newTestTelnyx(t, f.URL).CallStatus(ctx, "v3:abc")
		if got.Liveness != Ended || !got.Answered {
			t.Fatalf("status %+v", got)
		}
		r := f.request(t)
		if r.method != http.MethodGet || r.path != "/v2/calls/v3:abc" || r.authorization != telnyxBearer {
			t.Fatalf("request %s %s", r.method, r.path)
		}
	})
	t.Run("timeout is a failed look-up", func(t *testing.T) {
		f := newFakeCarrier(t, hang)
		if got := newTestTelnyx(t, f.URL).CallStatus(ctx, "v3:abc"); got.Liveness != LookupFailed || got.Reason != "timeout" {
			t.Fatalf("status %+v", got)
		}
	})
}
