package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRunServesBothAPIsAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := map[string]string{"CARRIERSIM_RING": "10ms", "CARRIERSIM_CALLBACK_DROP_RATE": "1"}
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"carriersim", "-addr", "127.0.0.1:0", "-account-sid", "ACtest", "-auth-token", "secret",
			"-telnyx-api-key", "KEYtest", "-connection-id", "42", "-rest-latency", "1ms"},
			func(k string) string { return env[k] }, outW, io.Discard)
		outW.Close()
	}()

	lines := bufio.NewScanner(outR)
	var base, printed string
	for lines.Scan() {
		printed += lines.Text() + "\n"
		if m := regexp.MustCompile(`listening on (\S+)`).FindStringSubmatch(lines.Text()); m != nil {
			base = m[1]
		}
		if strings.HasPrefix(lines.Text(), "telnyx:") {
			break
		}
	}
	go io.Copy(io.Discard, outR)
	for _, want := range []string{"account_sid=ACtest", "auth_token=secret", "api_key=KEYtest", "connection_id=42", "public_key="} {
		if !strings.Contains(printed, want) {
			t.Errorf("start-up output lacks %q:\n%s", want, printed)
		}
	}

	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest("POST", base+"/2010-04-01/Accounts/ACtest/Calls.json", strings.NewReader(url.Values{
		"To": {"+15551230001"}, "From": {"+1"}, "Url": {"http://127.0.0.1:1/voice"}, "StatusCallback": {"http://127.0.0.1:1/status"},
	}.Encode()))
	req.SetBasicAuth("ACtest", "secret")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("twilio create: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", base+"/v2/calls/nope", nil)
	req.Header.Set("Authorization", "Bearer KEYtest")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Telnyx answers 422 for a call it does not know (or ended over 10 minutes ago).
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("telnyx get: %d, want 422", resp.StatusCode)
	}

	// The faults from the environment and the flags are in force.
	resp, err = client.Get(base + "/sim/faults")
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	json.NewDecoder(resp.Body).Decode(&f)
	resp.Body.Close()
	if f["callback_drop_rate"] != 1.0 || f["rest_latency"] != "1ms" || f["rest_error_status"] != 503.0 {
		t.Errorf("faults %v", f)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err = client.Get(base + "/sim/stats")
		if err != nil {
			t.Fatal(err)
		}
		var s map[string]any
		json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
		if s["calls_created"] == 1.0 && s["callbacks_dropped"] == 1.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %v", s)
		}
		time.Sleep(5 * time.Millisecond)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

func TestRunRejectsBadConfiguration(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
	}{
		{args: []string{"-no-such-flag"}},
		{args: []string{"-callback-drop-rate", "2"}},
		{args: []string{"-telnyx-private-key", "c2hvcnQ="}},
		{args: []string{"extra"}},
		{env: map[string]string{"CARRIERSIM_RING": "soon"}},
	} {
		args := append([]string{"carriersim", "-addr", "127.0.0.1:0"}, tt.args...)
		err := run(context.Background(), args, func(k string) string { return tt.env[k] }, io.Discard, io.Discard)
		if err == nil {
			t.Errorf("%v %v: run succeeded", tt.args, tt.env)
		}
	}
}
