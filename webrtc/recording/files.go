package recording

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Dir is the directory recordings are written to (SWITCHBOARD_RECORDINGS_DIR).
type Dir string

// Open checks that dir exists (creating it if needed) and can be written to, so a wrong
// setting stops the server at start rather than failing the first recorded call.
func Open(dir string) (Dir, error) {
	if dir == "" {
		return "", errors.New("recording: no directory")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("recording: %w", err)
	}
	probe, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return "", fmt.Errorf("recording: the directory cannot be written: %w", err)
	}
	_ = probe.Close()           // empty; only its creation mattered
	_ = os.Remove(probe.Name()) // a probe left behind is harmless
	return Dir(dir), nil
}

// Name is the file name of a call's recording made by instance from at: one file per
// instance that carried the call's audio (a call handed over to another instance goes on in
// a second file there), never two for the same start.
func Name(callID, instance string, at time.Time) string {
	return callID + "_" + instance + "_" + strconv.FormatInt(at.UnixMilli(), 10) + ".wav"
}

// ValidName reports whether name could have been made by Name: a plain file name, so a name
// read from Redis can never point outside the directory.
func ValidName(name string) bool {
	if !strings.HasSuffix(name, ".wav") || len(name) > 255 || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// Path is where the file called name lives in d.
func (d Dir) Path(name string) string { return filepath.Join(string(d), name) }

// Sweep deletes the recordings last written before now-keep, and returns how many it
// deleted. Files that are not recordings are left alone.
func (d Dir) Sweep(now time.Time, keep time.Duration) (int, error) {
	entries, err := os.ReadDir(string(d))
	if err != nil {
		return 0, fmt.Errorf("recording: %w", err)
	}
	deleted := 0
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !ValidName(e.Name()) {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if info.ModTime().After(now.Add(-keep)) {
			continue
		}
		if err := os.Remove(d.Path(e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		deleted++
	}
	return deleted, errors.Join(errs...)
}
