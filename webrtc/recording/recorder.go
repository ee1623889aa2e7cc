package recording

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/switchboard/switchboard/webrtc/media"
)

var errNotWAV = errors.New("recording: not a PCM WAV file")

// frameDuration is one 20 ms frame: the clock's tick and the unit the file grows by.
const frameDuration = time.Second * media.FrameSamples / media.SampleRate

// frameBytes is one 20 ms stereo frame in the file.
const frameBytes = media.FrameSamples * bytesPerFrame

// queueFrames bounds the frames a side may have waiting for the clock: enough to ride out
// jitter and a late tick, not so many that the channels drift apart (80 ms at most).
const queueFrames = 4

// flushEvery is how often the audio reaches the file and the header is brought up to date:
// what a process that dies may lose.
const flushEvery = time.Second

// Span is a part of a recording, as offsets from its start.
type Span struct {
	From time.Duration `json:"from"`
	To   time.Duration `json:"to"`
}

// Summary describes a finished (or running) recording.
type Summary struct {
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	Paused   []Span        `json:"paused,omitempty"`
}

// side is the caller (left channel) or the agent side (right).
type side int

const (
	caller side = iota
	agent
)

// Recorder writes one call's recording. Its methods are safe for concurrent use.
type Recorder struct {
	file *os.File
	buf  *bufio.Writer

	mu      sync.Mutex
	queues  [2][][]byte
	paused  bool
	spans   []Span
	frames  int64 // frames written
	started time.Time
	err     error // the first write error; the recording stops growing

	stop chan struct{}
	done chan struct{}
}

// Start creates the file at path (it must not exist) and starts recording.
func Start(path string) (*Recorder, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	r := &Recorder{file: f, buf: bufio.NewWriterSize(f, 64<<10), started: time.Now(),
		stop: make(chan struct{}), done: make(chan struct{})}
	if _, err := f.Write(header(0)); err != nil {
		_ = f.Close() // the write error is the one to report
		_ = os.Remove(path)
		return nil, fmt.Errorf("recording: %w", err)
	}
	go r.run()
	return r, nil
}

// Caller takes a frame of what the caller said (mu-law, 20 ms); Agent what the agent side
// said. Neither blocks; a side that runs ahead of the clock loses its oldest frame.
func (r *Recorder) Caller(ulaw []byte) { r.put(caller, ulaw) }
func (r *Recorder) Agent(ulaw []byte)  { r.put(agent, ulaw) }

func (r *Recorder) put(s side, ulaw []byte) {
	if len(ulaw) != media.FrameSamples {
		return // not a 20 ms frame: nothing the clock could place
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queues[s]
	if len(q) == queueFrames {
		q = q[1:]
	}
	r.queues[s] = append(q, append([]byte(nil), ulaw...))
}

// Pause makes the recording silent from now on, until Resume; false if it was paused.
func (r *Recorder) Pause() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.paused {
		return false
	}
	r.paused = true
	at := r.offsetLocked()
	r.spans = append(r.spans, Span{From: at, To: at})
	return true
}

// Resume records again after Pause; false if it was not paused.
func (r *Recorder) Resume() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.paused {
		return false
	}
	r.paused = false
	r.spans[len(r.spans)-1].To = r.offsetLocked()
	return true
}

// Paused reports whether the recording is paused.
func (r *Recorder) Paused() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.paused
}

func (r *Recorder) offsetLocked() time.Duration { return time.Duration(r.frames) * frameDuration }

// Summary describes the recording so far; a span still paused ends now.
func (r *Recorder) Summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Summary{Started: r.started, Duration: r.offsetLocked(), Paused: append([]Span(nil), r.spans...)}
	if r.paused {
		s.Paused[len(s.Paused)-1].To = s.Duration
	}
	return s
}

// Stop ends the recording: the last frames and the final header are written and the file
// closed. It returns the summary and the first error the recording met.
func (r *Recorder) Stop() (Summary, error) {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
	s := r.Summary()
	r.mu.Lock()
	defer r.mu.Unlock()
	return s, r.err
}

// run is the recording's clock: every tick it writes as many frames as the time since the
// start calls for (a late tick catches up), so the file's length follows the wall clock.
func (r *Recorder) run() {
	defer close(r.done)
	tick := time.NewTicker(frameDuration)
	defer tick.Stop()
	pcm := make([]byte, frameBytes)
	lastFlush := time.Now()
	for {
		select {
		case <-r.stop:
			r.writeDue(time.Now(), pcm)
			r.finish()
			return
		case now := <-tick.C:
			r.writeDue(now, pcm)
			if now.Sub(lastFlush) >= flushEvery {
				lastFlush = now
				r.flush()
			}
		}
	}
}

// writeDue writes the frames due by now.
func (r *Recorder) writeDue(now time.Time, pcm []byte) {
	due := int64(now.Sub(r.started) / frameDuration)
	for {
		r.mu.Lock()
		if r.frames >= due || r.err != nil {
			r.mu.Unlock()
			return
		}
		left, right := r.pop(caller), r.pop(agent)
		if r.paused {
			left, right = nil, nil
		}
		r.frames++
		r.mu.Unlock()
		interleave(pcm, left, right)
		if _, err := r.buf.Write(pcm); err != nil {
			r.fail(err)
		}
	}
}

// pop takes a side's oldest frame, or nil (silence) when it has none. Called with r.mu held.
func (r *Recorder) pop(s side) []byte {
	q := r.queues[s]
	if len(q) == 0 {
		return nil
	}
	r.queues[s] = q[1:]
	return q[0]
}

// interleave decodes a frame from each side (nil is silence) into stereo PCM.
func interleave(pcm, left, right []byte) {
	for i := range media.FrameSamples {
		var l, rt int16
		if left != nil {
			l = media.DecodeUlaw(left[i])
		}
		if right != nil {
			rt = media.DecodeUlaw(right[i])
		}
		binary.LittleEndian.PutUint16(pcm[i*4:], uint16(l))
		binary.LittleEndian.PutUint16(pcm[i*4+2:], uint16(rt))
	}
}

// flush puts the audio written so far in the file and the header in step with it.
func (r *Recorder) flush() {
	if err := r.buf.Flush(); err != nil {
		r.fail(err)
		return
	}
	r.mu.Lock()
	dataLen := uint32(r.frames * frameBytes)
	r.mu.Unlock()
	if err := patchLengths(r.file, dataLen); err != nil {
		r.fail(err)
	}
}

func (r *Recorder) finish() {
	r.flush()
	if err := r.file.Close(); err != nil {
		r.fail(err)
	}
}

func (r *Recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = fmt.Errorf("recording: %w", err)
	}
}
