package recording

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestNamesStayInTheDirectory(t *testing.T) {
	good := Name("CA0123abc", "web-1-3fa2", time.UnixMilli(1700000000000))
	if !ValidName(good) {
		t.Fatalf("%q, made by Name, is not valid", good)
	}
	for _, bad := range []string{"../x.wav", "a/b.wav", ".hidden.wav", "x.mp3", "x y.wav", "", "..wav"} {
		if ValidName(bad) {
			t.Errorf("%q is valid", bad)
		}
	}
}

// Sweep deletes recordings older than the retention and nothing else.
func TestSweepDeletesOnlyOldRecordings(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "rec"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	write := func(name string, age time.Duration) {
		t.Helper()
		if err := os.WriteFile(d.Path(name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(d.Path(name), now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	write("old_i_1.wav", 31*24*time.Hour)
	write("new_i_2.wav", time.Hour)
	write("notes.txt", 90*24*time.Hour)
	n, err := d.Sweep(now, 720*time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("swept %d (%v), want 1", n, err)
	}
	for name, want := range map[string]bool{"old_i_1.wav": false, "new_i_2.wav": true, "notes.txt": true} {
		if _, err := os.Stat(d.Path(name)); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", name, err == nil, want)
		}
	}
}

func TestOpenRefusesAnUnwritableDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(file, "rec")); err == nil {
		t.Fatal("opened a directory under a file")
	}
	if _, err := Open(""); err == nil {
		t.Fatal("opened no directory")
	}
}
