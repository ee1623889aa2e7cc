package recording

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/switchboard/switchboard/store"
)

// Serving: a recording's file is on the instance that wrote it. Any instance serves it: from
// its own directory when the file is there (one instance, or a directory shared by all of
// them), otherwise fetched from the instance that wrote it, over its internal route
// (GET /internal/recordings/{file}, authenticated by an HMAC of the file name with a secret
// every instance derives from the admin token). Range requests pass through both ways, so a
// player can seek.

// TokenHeader carries the internal route's token.
const TokenHeader = "X-Switchboard-Recording-Token"

// Server serves recording files.
type Server struct {
	Dir      Dir    // this instance's recordings directory; "" when it records nothing
	Instance string // this instance's id
	Secret   []byte // shared by every instance
	Client   *http.Client
}

// ErrGone is returned for a recording whose file no longer exists (past its retention).
var ErrGone = errors.New("recording: the file is gone (past its retention, or its instance's disk was lost)")

// ErrUnreachable is returned when the instance holding the file cannot be reached.
var ErrUnreachable = errors.New("recording: the instance that wrote the file cannot be reached")

// Token is the internal route's token for file.
func Token(secret []byte, file string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("recording|" + file))
	return hex.EncodeToString(m.Sum(nil))
}

// ServePart answers r with part's audio: from the local directory, or fetched from the
// instance that wrote it. It writes nothing when it returns an error.
func (s *Server) ServePart(w http.ResponseWriter, r *http.Request, part store.RecordingPart) error {
	if !ValidName(part.File) {
		return ErrGone
	}
	if s.Dir != "" {
		err := s.serveLocal(w, r, part.File)
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if part.Instance == s.Instance || part.URL == "" {
		return ErrGone
	}
	return s.fetch(r.Context(), w, r, part)
}

func (s *Server) serveLocal(w http.ResponseWriter, r *http.Request, file string) error {
	f, err := os.Open(s.Dir.Path(file))
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // read-only: closing cannot lose anything
	st, err := f.Stat()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "audio/wav")
	w.Header().Set("Content-Disposition", `inline; filename="`+file+`"`)
	w.Header().Set("Cache-Control", "private, no-store")
	http.ServeContent(w, r, file, st.ModTime(), f)
	return nil
}

// passHeaders are the headers a fetched recording's answer keeps.
var passHeaders = []string{"Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "Last-Modified", "Content-Disposition", "Cache-Control"}

func (s *Server) fetch(ctx context.Context, w http.ResponseWriter, r *http.Request, part store.RecordingPart) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute) // a long recording on a slow link; the client's going ends it sooner
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(part.URL, "/")+"/internal/recordings/"+part.File, nil)
	if err != nil {
		return ErrUnreachable
	}
	req.Header.Set(TokenHeader, Token(s.Secret, part.File))
	for _, h := range []string{"Range", "If-Range", "If-Modified-Since"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return ErrUnreachable
	}
	defer func() { _ = resp.Body.Close() }() // read to its end or abandoned: nothing to report
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return ErrGone
	case resp.StatusCode >= 400 && resp.StatusCode != http.StatusRequestedRangeNotSatisfiable:
		return ErrUnreachable
	}
	for _, h := range passHeaders {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body) // a client or instance that goes mid-file ends the answer; nothing to tell anyone
	return nil
}

// HandleInternal serves this instance's files to the other instances (the token says the
// request comes from one of them).
func (s *Server) HandleInternal(w http.ResponseWriter, r *http.Request, file string) {
	want := Token(s.Secret, file)
	if subtle.ConstantTimeCompare([]byte(r.Header.Get(TokenHeader)), []byte(want)) != 1 {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	if s.Dir == "" || !ValidName(file) {
		http.NotFound(w, r)
		return
	}
	if err := s.serveLocal(w, r, file); err != nil {
		http.NotFound(w, r)
	}
}
