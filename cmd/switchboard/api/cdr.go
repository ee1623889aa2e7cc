package api

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
)

// cdrScanner walks call-detail records page by page; *store.Redis implements it.
type cdrScanner interface {
	ScanCDRs(ctx context.Context, q store.CDRQuery, fn func(store.CDR) error) error
}

// maxCDRLimit bounds limit=; the stream itself holds at most about 100,000 records.
const maxCDRLimit = 1_000_000

// HandleCDRExport streams the call-detail records a search selects, as CSV or as one JSON
// array, writing each page of records as it is read: memory stays that of one page whatever
// the range. The search's errors are 400 with every bad field; Redis down before the first
// record is 503. A failure after the answer has started cannot change its status, so the
// connection is cut instead: the client sees a truncated download (a JSON array that does
// not close, a chunked body without its end), never a short file that looks complete.
func HandleCDRExport(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		q, format, err := parseCDRQuery(c)
		if err != nil {
			return fail(c, d.Log, err)
		}
		out := newCDRWriter(c, format, q)
		err = d.History.ScanCDRs(c.Request().Context(), q, out.write)
		if err != nil && !out.started {
			return fail(c, d.Log, err)
		}
		if err != nil {
			d.Log.Warn("call-detail export cut short", "request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err", err)
			panic(http.ErrAbortHandler) // Echo's Recover lets it through: net/http resets the stream
		}
		return out.finish()
	}
}

// parseCDRQuery reads the search from the query string, reporting every bad field at once.
func parseCDRQuery(c echo.Context) (store.CDRQuery, string, error) {
	var q store.CDRQuery
	var bad []FieldError
	when := func(name string) time.Time {
		s := c.QueryParam(name)
		if s == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			bad = append(bad, FieldError{Field: name, Message: "want an RFC 3339 time, such as 2026-12-02T15:04:05Z"})
		}
		return t
	}
	q.From, q.To = when("from"), when("to")
	if !q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To) {
		bad = append(bad, FieldError{Field: "to", Message: "is before from"})
	}
	q.Number = strings.TrimSpace(c.QueryParam("number"))
	q.Agent, q.Carrier = c.QueryParam("agent"), c.QueryParam("carrier")
	if s := c.QueryParam("state"); s != "" {
		st, err := call.ParseState(s)
		if err != nil || !st.Terminal() {
			bad = append(bad, FieldError{Field: "state", Message: "want an ending state: completed, busy, no-answer, failed or canceled"})
		}
		q.State = st
	}
	if s := c.QueryParam("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxCDRLimit {
			bad = append(bad, FieldError{Field: "limit", Message: "want a whole number from 1 to " + strconv.Itoa(maxCDRLimit)})
		}
		q.Limit = n
	}
	switch c.QueryParam("order") {
	case "", "asc":
	case "desc":
		q.Newest = true
	default:
		bad = append(bad, FieldError{Field: "order", Message: "want asc (oldest first) or desc"})
	}
	format := c.QueryParam("format")
	switch format {
	case "":
		format = "json"
	case "json", "csv":
	default:
		bad = append(bad, FieldError{Field: "format", Message: "want csv or json"})
	}
	if len(bad) > 0 {
		return q, "", &Error{Code: codeInvalid, Message: "the search is not valid", Fields: bad}
	}
	return q, format, nil
}

// cdrWriter writes records as they come, starting the answer on the first one (or at the
// end, for none), so that an error before then can still be answered with a status.
type cdrWriter struct {
	c       echo.Context
	format  string
	name    string
	started bool
	n       int
	buf     *bufio.Writer
	csv     *csv.Writer
	json    *json.Encoder
	rc      *http.ResponseController
}

func newCDRWriter(c echo.Context, format string, q store.CDRQuery) *cdrWriter {
	stamp := func(t time.Time, open string) string {
		if t.IsZero() {
			return open
		}
		return t.UTC().Format("20060102T150405Z")
	}
	return &cdrWriter{c: c, format: format, name: "cdr-" + stamp(q.From, "start") + "-" + stamp(q.To, "now") + "." + format,
		rc: http.NewResponseController(c.Response())}
}

var cdrColumns = []string{"recorded_at", "call_id", "state", "direction", "from", "to", "carrier", "carrier_call_id",
	"agent", "created_at", "ended_at", "duration_s", "attempts", "corrects", "disposition", "notes", "wrapped_up_at", "wrapped_up_by",
	"agents", "recorded", "recording_s"}

func (w *cdrWriter) start() error {
	w.started = true
	h := w.c.Response().Header()
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+w.name+`"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if w.format == "csv" {
		h.Set(echo.HeaderContentType, "text/csv; charset=utf-8; header=present")
	} else {
		h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	}
	w.c.Response().WriteHeader(http.StatusOK)
	w.buf = bufio.NewWriterSize(w.c.Response(), 32<<10)
	if w.format == "csv" {
		w.csv = csv.NewWriter(w.buf)
		w.csv.UseCRLF = true // RFC 4180
		return w.csv.Write(cdrColumns)
	}
	w.json = json.NewEncoder(w.buf)
	_, err := w.buf.WriteString("[\n")
	return err
}

func (w *cdrWriter) write(r store.CDR) error {
	if !w.started {
		if err := w.start(); err != nil {
			return err
		}
	}
	if w.n%1000 == 0 {
		// A long export is not cut by the server's write timeout, as long as it moves.
		_ = w.rc.SetWriteDeadline(time.Now().Add(30 * time.Second)) // not every writer has deadlines; then the server's stands
	}
	w.n++
	if w.format == "json" {
		if w.n > 1 {
			if err := w.buf.WriteByte(','); err != nil {
				return err
			}
		}
		return w.json.Encode(r)
	}
	return w.csv.Write(cdrRow(r))
}

func (w *cdrWriter) finish() error {
	if !w.started {
		if err := w.start(); err != nil {
			return err
		}
	}
	if w.format == "json" {
		if _, err := w.buf.WriteString("]\n"); err != nil {
			return err
		}
	} else if w.csv.Flush(); w.csv.Error() != nil {
		return w.csv.Error()
	}
	return w.buf.Flush()
}

func cdrRow(r store.CDR) []string {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	duration := ""
	if !r.CreatedAt.IsZero() && !r.EndedAt.IsZero() {
		duration = strconv.FormatFloat(r.EndedAt.Sub(r.CreatedAt).Seconds(), 'f', 3, 64)
	}
	var attempts strings.Builder
	for i, a := range r.Attempts {
		if i > 0 {
			attempts.WriteString("; ")
		}
		attempts.WriteString(a.Carrier + ": " + a.Detail)
	}
	recording := ""
	if r.Recorded {
		recording = strconv.FormatFloat(float64(r.RecordingMS)/1000, 'f', 3, 64)
	}
	corrects := ""
	if r.Corrects != call.Unknown {
		corrects = r.Corrects.String()
	}
	return []string{ts(r.RecordedAt), r.CallID, r.State.String(), r.Direction, cell(r.From), cell(r.To), r.Carrier,
		r.CarrierCallID, cell(r.Agent), ts(r.CreatedAt), ts(r.EndedAt), duration, cell(attempts.String()), corrects,
		cell(r.Disposition), cell(r.Notes), ts(r.WrappedUpAt), cell(r.WrappedUpBy),
		cell(strings.Join(r.Agents, ";")), strconv.FormatBool(r.Recorded), recording}
}

// cell keeps a spreadsheet from running a value as a formula: text that a caller or an
// agent chose (a caller id, a note) and that starts with =, @, +, - or a control character
// gets a leading apostrophe. A phone number (+ and digits) is left as it is.
func cell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '@', '\t', '\r':
		return "'" + s
	case '+', '-':
		if strings.Trim(s[1:], "0123456789") != "" || len(s) == 1 {
			return "'" + s
		}
	}
	return s
}
