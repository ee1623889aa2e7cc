package agents

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestPageFiles: every script and style sheet the softphone page names is served, with its
// type and the page's CSP, and /agent/:file serves nothing else (not the page under another
// name, not a path out of the directory).
func TestPageFiles(t *testing.T) {
	e := echo.New()
	e.GET("/agent", HandlePage()) // as cmd/switchboard/routes.go mounts them
	e.GET("/agent/:file", HandleFile())
	srv := httptest.NewServer(e)
	defer srv.Close()

	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	_, page := get("/agent")
	named := regexp.MustCompile(`(?:src|href)="/agent/([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(named) < 6 {
		t.Fatalf("the page names %d files, want its five scripts and its style sheet: %v", len(named), named)
	}
	for _, m := range named {
		resp, body := get("/agent/" + m[1])
		want := "text/javascript"
		if strings.HasSuffix(m[1], ".css") {
			want = "text/css"
		}
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) ||
			resp.Header.Get("Content-Security-Policy") == "" || len(body) == 0 {
			t.Errorf("/agent/%s: %d %q CSP %q, %d bytes", m[1], resp.StatusCode, resp.Header.Get("Content-Type"),
				resp.Header.Get("Content-Security-Policy"), len(body))
		}
	}
	for _, path := range []string{"/agent/index.html", "/agent/nope.js", "/agent/..%2fdoc.go", "/agent/%2e%2e%2froutes.go"} {
		if resp, _ := get(path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
}
