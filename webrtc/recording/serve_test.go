package recording

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

// twoInstances: a has written file (its content given), b has an empty directory of its own;
// each serves its internal route.
func twoInstances(t *testing.T, file string, content []byte) (a, b *Server, aURL string) {
	t.Helper()
	secret := []byte("shared secret")
	mk := func(inst string) *Server {
		d, err := Open(filepath.Join(t.TempDir(), inst))
		if err != nil {
			t.Fatal(err)
		}
		return &Server{Dir: d, Instance: inst, Secret: secret, Client: http.DefaultClient}
	}
	a, b = mk("a"), mk("b")
	if err := os.WriteFile(a.Dir.Path(file), content, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.HandleInternal(w, r, strings.TrimPrefix(r.URL.Path, "/internal/recordings/"))
	}))
	t.Cleanup(srv.Close)
	return a, b, srv.URL
}

func serve(s *Server, part store.RecordingPart, header http.Header) (*httptest.ResponseRecorder, error) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/api/calls/x/recording", nil)
	for k, v := range header {
		r.Header[k] = v
	}
	return w, s.ServePart(w, r, part)
}

// Any instance serves a recording: the writer from its directory, another by fetching it from
// the writer; ranges pass through both ways.
func TestServeLocalAndFetched(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789"), 1000)
	file := Name("CA1", "a", time.UnixMilli(1700000000000))
	a, b, aURL := twoInstances(t, file, content)
	part := store.RecordingPart{File: file, Instance: "a", URL: aURL}
	for name, s := range map[string]*Server{"the writer": a, "another instance": b} {
		w, err := serve(s, part, nil)
		if err != nil || w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), content) || w.Header().Get("Content-Type") != "audio/wav" {
			t.Fatalf("%s: %v %d %q (%d bytes)", name, err, w.Code, w.Header().Get("Content-Type"), w.Body.Len())
		}
		w, err = serve(s, part, http.Header{"Range": {"bytes=100-199"}})
		if err != nil || w.Code != http.StatusPartialContent || !bytes.Equal(w.Body.Bytes(), content[100:200]) ||
			w.Header().Get("Content-Range") != "bytes 100-199/10000" {
			t.Fatalf("%s, a range: %v %d %q", name, err, w.Code, w.Header().Get("Content-Range"))
		}
	}
}

func TestServeRefusals(t *testing.T) {
	file := Name("CA1", "a", time.UnixMilli(1700000000000))
	a, b, aURL := twoInstances(t, file, []byte("audio"))
	// The internal route wants the token for that very file.
	for _, tok := range []string{"", Token(a.Secret, "other.wav"), Token([]byte("wrong"), file)} {
		req, _ := http.NewRequest(http.MethodGet, aURL+"/internal/recordings/"+file, nil)
		req.Header.Set(TokenHeader, tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || bytes.Contains(body, []byte("audio")) {
			t.Fatalf("token %q: %d", tok, resp.StatusCode)
		}
	}
	gone := store.RecordingPart{File: Name("CA2", "a", time.UnixMilli(1700000000000)), Instance: "a", URL: aURL}
	if _, err := serve(b, gone, nil); !errors.Is(err, ErrGone) {
		t.Fatalf("a deleted file: %v", err)
	}
	if _, err := serve(a, gone, nil); !errors.Is(err, ErrGone) {
		t.Fatalf("a deleted file at its writer: %v", err)
	}
	down := store.RecordingPart{File: file, Instance: "c", URL: "http://127.0.0.1:1"}
	if w, err := serve(b, down, nil); !errors.Is(err, ErrUnreachable) || w.Body.Len() != 0 {
		t.Fatalf("an unreachable writer: %v", err)
	}
	if _, err := serve(b, store.RecordingPart{File: "../../etc/passwd", Instance: "a", URL: aURL}, nil); !errors.Is(err, ErrGone) {
		t.Fatalf("a name outside the directory: %v", err)
	}
}
