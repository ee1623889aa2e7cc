package api

import (
	"net/http"
	"testing"
)

// TestDeletingAnUnknownCarrierIsNotAudited: 404, and the audit log does not record a change
// that did not happen.
func TestDeletingAnUnknownCarrierIsNotAudited(t *testing.T) {
	f := newFixture(t)
	if code, _, raw := f.do(t, "DELETE", "/api/admin/carriers/nosuch", nil); code != http.StatusNotFound {
		t.Fatalf("delete unknown: %d %s", code, raw)
	}
	if _, audit, raw := f.do(t, "GET", "/api/admin/audit", nil); len(audit["entries"].([]any)) != 0 {
		t.Fatalf("audit after deleting nothing: %s", raw)
	}
	if code, _, raw := f.do(t, "PUT", "/api/admin/carriers/primary", twilioCarrier("http://127.0.0.1:1", 0)); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, raw)
	}
	for _, want := range []int{http.StatusNoContent, http.StatusNotFound} {
		if code, _, _ := f.do(t, "DELETE", "/api/admin/carriers/primary", nil); code != want {
			t.Fatalf("delete: %d, want %d", code, want)
		}
	}
	_, audit, raw := f.do(t, "GET", "/api/admin/audit", nil)
	if entries := audit["entries"].([]any); len(entries) != 2 || entries[0].(map[string]any)["action"] != "carrier.delete" {
		t.Fatalf("audit: %s", raw)
	}
}

// TestCleartextAPIURLIsAFieldError: http:// to another host is refused on the api_url field,
// like every other validation error, unless allow_insecure_api_url says so.
func TestCleartextAPIURLIsAFieldError(t *testing.T) {
	f := newFixture(t)
	cfg := twilioCarrier("http://carrier.example.com", 0)
	code, got, raw := f.do(t, "PUT", "/api/admin/carriers/remote", cfg)
	if code != http.StatusBadRequest {
		t.Fatalf("cleartext api_url: %d %s", code, raw)
	}
	fields := got["error"].(map[string]any)["fields"].([]any)
	if len(fields) != 1 || fields[0].(map[string]any)["field"] != "api_url" {
		t.Fatalf("fields: %s", raw)
	}
	cfg["allow_insecure_api_url"] = true
	if code, got, raw := f.do(t, "PUT", "/api/admin/carriers/remote", cfg); code != http.StatusCreated || got["allow_insecure_api_url"] != true {
		t.Fatalf("with consent: %d %s", code, raw)
	}
}
