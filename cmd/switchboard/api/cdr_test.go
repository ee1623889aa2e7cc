package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/storetest"
)

// endCall stores a whole call (created, then ended in state) as the carriers' events would,
// so the apply script writes its call-detail record.
func endCall(t *testing.T, st *store.Redis, from, to, agent string, state call.State) string {
	t.Helper()
	id := store.NewCallID()
	ctx := context.Background()
	for _, e := range []call.Event{
		{ID: id + ":q", CallID: id, State: call.Queued, Direction: call.Inbound, From: from, To: to, Agent: agent, Carrier: "primary"},
		{ID: id + ":end", CallID: id, State: state, Carrier: "primary"},
	} {
		if _, err := st.Apply(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func (f *fixture) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: body: %v", path, err)
	}
	return resp, string(body)
}

func exportJSON(t *testing.T, f *fixture, query string) []store.CDR {
	t.Helper()
	resp, body := f.get(t, "/api/admin/cdr?format=json&"+query)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", query, resp.StatusCode, body)
	}
	var out []store.CDR
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("%s: not one JSON array: %v\n%s", query, err, body)
	}
	return out
}

func ids(cdrs []store.CDR) []string {
	out := []string{}
	for _, c := range cdrs {
		out = append(out, c.CallID)
	}
	return out
}

// TestCDRExportCSVAndJSON: the same known records come out as a JSON array and as CSV with a
// header row, quoted as RFC 4180 says, with caller-chosen text that a spreadsheet would run
// as a formula made inert, and as a download.
func TestCDRExportCSVAndJSON(t *testing.T) {
	f := newFixture(t)
	a := endCall(t, f.st, "+15551230001", "+15559990000", "ann", call.Completed)
	b := endCall(t, f.st, `Smith, "Jo"`, "+15559990000", "bob", call.NoAnswer)
	c := endCall(t, f.st, "=HYPERLINK(\"http://x\")", "+15559990000", "", call.Failed)
	// Ann wraps up after the end: the record, written before, carries it in the export.
	wrap := call.WrapUp{Notes: "refund, then\n\"happy\"", Disposition: "resolved", WrappedUpAt: time.Now().UTC().Truncate(time.Millisecond), WrappedUpBy: "agent:ann"}
	if _, err := f.st.SaveWrapUp(context.Background(), a, wrap); err != nil {
		t.Fatal(err)
	}

	got := exportJSON(t, f, "")
	if !slices.Equal(ids(got), []string{a, b, c}) {
		t.Fatalf("json: %v, want %v", ids(got), []string{a, b, c})
	}
	if got[0].From != "+15551230001" || got[0].Agent != "ann" || got[0].State != call.Completed || got[0].RecordedAt.IsZero() ||
		got[0].WrapUp != wrap {
		t.Fatalf("json record: %+v", got[0])
	}

	resp, body := f.get(t, "/api/admin/cdr?format=csv")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), `attachment; filename="cdr-start-now.csv"`) {
		t.Fatalf("csv: %d %v", resp.StatusCode, resp.Header)
	}
	if !strings.Contains(body, "\r\n") || !strings.Contains(body, `"Smith, ""Jo"""`) {
		t.Fatalf("csv is not RFC 4180 (CRLF, quoted quotes):\n%s", body)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows[0], cdrColumns) || len(rows) != 4 {
		t.Fatalf("csv header or rows: %q", rows)
	}
	col := func(row int, name string) string { return rows[row][slices.Index(cdrColumns, name)] }
	if col(1, "call_id") != a || col(1, "from") != "+15551230001" || col(1, "agent") != "ann" || col(1, "state") != "completed" {
		t.Fatalf("row 1: %q", rows[1])
	}
	if col(1, "disposition") != "resolved" || col(1, "notes") != wrap.Notes || col(1, "wrapped_up_by") != "agent:ann" {
		t.Fatalf("row 1's wrap-up: %q", rows[1])
	}
	if col(2, "from") != `Smith, "Jo"` || col(2, "state") != "no-answer" {
		t.Fatalf("row 2: %q", rows[2])
	}
	if col(3, "from") != `'=HYPERLINK("http://x")` {
		t.Fatalf("a formula is left live: %q", col(3, "from"))
	}
	if col(1, "recorded_at") != got[0].RecordedAt.UTC().Format(time.RFC3339Nano) {
		t.Fatalf("recorded_at %s, json says %s", col(1, "recorded_at"), got[0].RecordedAt)
	}

	// Nothing selected is still a whole answer: an empty array, a header alone.
	if got := exportJSON(t, f, "agent=nobody"); len(got) != 0 {
		t.Fatalf("empty search: %v", got)
	}
	if _, body := f.get(t, "/api/admin/cdr?format=csv&agent=nobody"); body != strings.Join(cdrColumns, ",")+"\r\n" {
		t.Fatalf("empty csv: %q", body)
	}
}

func TestCDRExportFilters(t *testing.T) {
	f := newFixture(t)
	a := endCall(t, f.st, "+15551230001", "+15559990000", "ann", call.Completed)
	b := endCall(t, f.st, "+15557770002", "+15551230001", "bob", call.NoAnswer)
	c := endCall(t, f.st, "+15558880003", "+15550000000", "ann", call.Failed)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"number=5551230001", []string{a, b}},
		{"number=%2B1555888", []string{c}},
		{"agent=ann", []string{a, c}},
		{"state=failed", []string{c}},
		{"agent=ann&state=completed", []string{a}},
		{"carrier=primary", []string{a, b, c}},
		{"carrier=other", nil},
		{"limit=2", []string{a, b}},
		{"order=desc&limit=2", []string{c, b}},
	} {
		if got := ids(exportJSON(t, f, tc.query)); !slices.Equal(got, append([]string{}, tc.want...)) {
			t.Errorf("%s: %v, want %v", tc.query, got, tc.want)
		}
	}
}

// TestCDRExportTimeBounds: from is inclusive and to exclusive, on the time the record was
// written (recorded_at), so adjacent ranges split the records without a gap or a repeat.
func TestCDRExportTimeBounds(t *testing.T) {
	f := newFixture(t)
	var all []string
	for i := range 6 {
		all = append(all, endCall(t, f.st, fmt.Sprintf("+1555000%04d", i), "+15559990000", "ann", call.Completed))
	}
	recs := exportJSON(t, f, "")
	if !slices.Equal(ids(recs), all) {
		t.Fatalf("all: %v", ids(recs))
	}
	mid := recs[3].RecordedAt
	q := func(from, to time.Time) string {
		s := ""
		if !from.IsZero() {
			s += "from=" + from.Format(time.RFC3339Nano) + "&"
		}
		if !to.IsZero() {
			s += "to=" + to.Format(time.RFC3339Nano)
		}
		return strings.ReplaceAll(s, "+", "%2B")
	}
	before, after := ids(exportJSON(t, f, q(time.Time{}, mid))), ids(exportJSON(t, f, q(mid, time.Time{})))
	if !slices.Equal(append(before, after...), all) || !slices.Contains(after, all[3]) || slices.Contains(before, all[3]) {
		t.Fatalf("[start, mid) %v and [mid, now) %v do not split %v at record 3", before, after, all)
	}
	// A range of one millisecond holds exactly the records written in it.
	one := ids(exportJSON(t, f, q(mid, mid.Add(time.Millisecond))))
	var want []string
	for _, r := range recs {
		if r.RecordedAt.Equal(mid) {
			want = append(want, r.CallID)
		}
	}
	if !slices.Equal(one, want) {
		t.Fatalf("[mid, mid+1ms): %v, want %v", one, want)
	}
}

// TestCDRExportPagesAcrossTheCount: more records than one read of the stream (1,000) come
// out once each, in order, in both formats.
func TestCDRExportPagesAcrossTheCount(t *testing.T) {
	f := newFixture(t)
	const n = 1003
	want := make([]string, n)
	for i := range n {
		want[i] = endCall(t, f.st, "+15551230001", "+15559990000", "ann", call.Completed)
	}
	if got := ids(exportJSON(t, f, "")); !slices.Equal(got, want) {
		t.Fatalf("json: %d records, want %d", len(got), n)
	}
	_, body := f.get(t, "/api/admin/cdr?format=csv")
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(rows) != n+1 || rows[n][1] != want[n-1] {
		t.Fatalf("csv: %d rows, err %v", len(rows), err)
	}
}

func TestCDRExportValidation(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		query  string
		fields []string
	}{
		{"from=yesterday", []string{"from"}},
		{"from=2026-12-02T10:00:00Z&to=2026-12-02T09:00:00Z", []string{"to"}},
		{"format=xml", []string{"format"}},
		{"state=ringing&limit=0&order=up", []string{"state", "limit", "order"}},
		{"to=2026-13-02T09:00:00Z&format=pdf", []string{"to", "format"}},
	} {
		code, got, raw := f.do(t, "GET", "/api/admin/cdr?"+tc.query, nil)
		if code != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", tc.query, code, raw)
		}
		var fields []string
		for _, fe := range got["error"].(map[string]any)["fields"].([]any) {
			fields = append(fields, fe.(map[string]any)["field"].(string))
		}
		if !slices.Equal(fields, tc.fields) {
			t.Errorf("%s: fields %v, want %v", tc.query, fields, tc.fields)
		}
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/api/admin/cdr", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", resp.StatusCode)
	}
}

// TestCDRExportRedisDown: with Redis gone the export answers 503 in the API's error shape,
// not a 200 with an empty file.
func TestCDRExportRedisDown(t *testing.T) {
	srv := redistest.NewServer(t)
	st := storetest.OpenWith(t, store.Options{URL: srv.URL(), Namespace: redistest.Namespace(t), OpTimeout: 300 * time.Millisecond})
	endCall(t, st, "+15551230001", "+15559990000", "ann", call.Completed)
	h := serve(t, Deps{Store: st, History: st, AdminToken: token, Log: slog.New(slog.DiscardHandler)})
	f := &fixture{srv: h, st: st}
	if got := exportJSON(t, f, ""); len(got) != 1 {
		t.Fatalf("before: %v", got)
	}
	srv.Stop()
	for _, format := range []string{"csv", "json"} {
		code, got, raw := f.do(t, "GET", "/api/admin/cdr?format="+format, nil)
		if code != http.StatusServiceUnavailable || got["error"].(map[string]any)["code"] != "unavailable" {
			t.Fatalf("%s with Redis down: %d %s", format, code, raw)
		}
	}
}

// cutScanner hands out n records, then fails as Redis going away mid-export would.
type cutScanner struct{ n int }

func (s cutScanner) ScanCDRs(_ context.Context, _ store.CDRQuery, fn func(store.CDR) error) error {
	for i := range s.n {
		if err := fn(store.CDR{CallID: fmt.Sprintf("CL%04d", i), State: call.Completed}); err != nil {
			return err
		}
	}
	return fmt.Errorf("store: read call-detail records: %w", syscall.ECONNRESET)
}

// TestCDRExportCutShort: a failure after records were sent cannot change the status, so the
// connection is cut: the client's read fails, never a short file that looks whole. A failure
// before any record is still a 503.
func TestCDRExportCutShort(t *testing.T) {
	for _, format := range []string{"csv", "json"} {
		for _, n := range []int{0, 5000} {
			e := echo.New()
			mount(e, Deps{History: cutScanner{n}, AdminToken: token, Log: slog.New(slog.DiscardHandler)})
			h := httptest.NewServer(e)
			req, _ := http.NewRequest("GET", h.URL+"/api/admin/cdr?format="+format, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			h.Close()
			switch {
			case n == 0 && (resp.StatusCode != http.StatusServiceUnavailable || err != nil):
				t.Fatalf("%s, failing at once: %d %v %s", format, resp.StatusCode, err, body)
			case n > 0 && (resp.StatusCode != http.StatusOK || err == nil):
				t.Fatalf("%s, failing after %d records: %d, read error %v after %d bytes", format, n, resp.StatusCode, err, len(body))
			}
		}
	}
}
