package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/switchboard/switchboard/webrtc/agents"
	"github.com/switchboard/switchboard/webrtc/recording"
)

// Recording calls: off unless a directory is set. Each instance writes the calls whose audio
// it carries to its own files there (docs/agents.md, "Recording").

// recordMode says which calls are recorded when recording is on.
type recordMode string

const (
	recordAll      recordMode = "all"       // every connected call, from the moment it connects
	recordOnDemand recordMode = "on-demand" // only when the agent starts it
)

type recordingConfig struct {
	dir       string // "": recording is off
	mode      recordMode
	retention time.Duration
}

// recordingFlags registers the recording flags on fs; parse validates them after fs.Parse.
type recordingFlags struct{ dir, mode, retention string }

func addRecordingFlags(fs *flag.FlagSet, env func(name, def string) string) *recordingFlags {
	r := &recordingFlags{}
	fs.StringVar(&r.dir, "recordings-dir", env("SWITCHBOARD_RECORDINGS_DIR", ""),
		"record calls as WAV files in this directory (SWITCHBOARD_RECORDINGS_DIR); empty: no recording")
	fs.StringVar(&r.mode, "record", env("SWITCHBOARD_RECORD", string(recordAll)),
		"with a recordings directory: all (every connected call) or on-demand (when the agent starts it) (SWITCHBOARD_RECORD)")
	fs.StringVar(&r.retention, "recording-retention", env("SWITCHBOARD_RECORDING_RETENTION", "720h"),
		"how long recordings are kept before they are deleted (SWITCHBOARD_RECORDING_RETENTION)")
	return r
}

func (r *recordingFlags) parse() (recordingConfig, error) {
	c := recordingConfig{dir: r.dir, mode: recordMode(r.mode)}
	if c.mode != recordAll && c.mode != recordOnDemand {
		return c, fmt.Errorf("SWITCHBOARD_RECORD %q: want all or on-demand", r.mode)
	}
	var err error
	if c.retention, err = positiveDuration("SWITCHBOARD_RECORDING_RETENTION", r.retention); err != nil {
		return c, err
	}
	return c, nil
}

// sweepEvery is how often recordings past their retention are deleted.
const sweepEvery = time.Hour

// sweepRecordings deletes this instance's recordings past their retention, at start and then
// every sweepEvery, until ctx ends.
func sweepRecordings(ctx context.Context, dir recording.Dir, keep time.Duration, log *slog.Logger) {
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	for {
		switch n, err := dir.Sweep(time.Now(), keep); {
		case err != nil:
			log.Warn("recordings: sweep failed; will try again", "err", err)
		case n > 0:
			log.Info("recordings: deleted past their retention", "files", n, "retention", keep)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// recordings is this instance's recording: its directory ("" when it records nothing) and the
// server of every instance's files.
type recordings struct {
	cfg    recordingConfig
	dir    recording.Dir
	server *recording.Server
}

// openRecordings checks the recordings directory at start (a wrong one stops the server
// here, not at the first recorded call) and says whether calls are recorded.
func openRecordings(cfg recordingConfig, adminToken string, log *slog.Logger) (*recordings, error) {
	r := &recordings{cfg: cfg}
	if cfg.dir == "" {
		log.Info("recording is off (set SWITCHBOARD_RECORDINGS_DIR to record calls)")
	} else {
		dir, err := recording.Open(cfg.dir)
		if err != nil {
			return nil, fmt.Errorf("SWITCHBOARD_RECORDINGS_DIR %q: %w", cfg.dir, err)
		}
		r.dir = dir
		log.Info("recording calls", "dir", cfg.dir, "mode", cfg.mode, "retention", cfg.retention)
	}
	// Every instance serves recordings, its own or fetched from the instance that wrote them,
	// whether or not it records itself.
	r.server = &recording.Server{Dir: r.dir, Secret: derivedSecret(adminToken, "recordings v1"),
		Client: &http.Client{}} // bounded per request by its context
	return r, nil
}

// hubOptions is the agents' hub's recording setting: nil when recording is off. The
// directory was checked by openRecordings.
func (c recordingConfig) hubOptions() *agents.RecordingOptions {
	if c.dir == "" {
		return nil
	}
	return &agents.RecordingOptions{Dir: recording.Dir(c.dir), OnDemand: c.mode == recordOnDemand, Keep: c.retention}
}

// run deletes recordings past their retention until ctx ends.
func (r *recordings) run(ctx context.Context, log *slog.Logger) {
	if r.dir != "" {
		sweepRecordings(ctx, r.dir, r.cfg.retention, log)
	}
}
