package agents

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/agentsim"
	"github.com/switchboard/switchboard/webrtc/media"
	"github.com/switchboard/switchboard/webrtc/recording"
)

func recordingOn(dir recording.Dir, onDemand bool) hubTweak {
	return func(o *HubOptions) { o.Recording = &RecordingOptions{Dir: dir, OnDemand: onDemand, Keep: time.Hour} }
}

// channelPower reads a recording back and returns the Goertzel power of hz on each channel,
// over the frames in [from, to).
func channelPower(t *testing.T, path string, from, to time.Duration, hz float64) (left, right float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := recording.ReadInfo(f)
	if err != nil {
		t.Fatal(err)
	}
	const frameBytes = media.FrameSamples * 4
	start := int64(from/(20*time.Millisecond)) * frameBytes
	end := min(int64(to/(20*time.Millisecond))*frameBytes, info.DataLen)
	if end <= start {
		t.Fatalf("the recording holds %d bytes of audio, want [%d, %d)", info.DataLen, start, end)
	}
	data := make([]byte, end-start)
	if _, err := f.ReadAt(data, info.DataOffset+start); err != nil {
		t.Fatal(err)
	}
	l, r := make([]byte, 0, len(data)/4), make([]byte, 0, len(data)/4)
	for i := 0; i+4 <= len(data); i += 4 {
		l = append(l, media.EncodeUlaw(int16(binary.LittleEndian.Uint16(data[i:]))))
		r = append(r, media.EncodeUlaw(int16(binary.LittleEndian.Uint16(data[i+2:]))))
	}
	return power(l, hz), power(r, hz)
}

// recordedCall signs ann (440 Hz) in on a hub that records calls (onDemand, or every call) in
// dir, and has her answer a new inbound call whose caller plays 1000 Hz.
func recordedCall(t *testing.T, onDemand bool) (recording.Dir, *testHub, *agentsim.SimSoftphone, string, *testStream) {
	t.Helper()
	dir, err := recording.Open(filepath.Join(t.TempDir(), "rec"))
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHub(t, "", recordingOn(dir, onDemand))
	ann := h.agent(t, "ann", 440)
	id := h.inbound(t, "+15557654321")
	expect(t, ann, "ringing", typed(signal.TypeRinging, id))
	stream := startStream(t, h.Hub, id, 1000)
	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	return dir, h, ann, id, stream
}

// With every call recorded, the instance holding the call records it from the moment its agent
// is connected: the caller's 1 kHz on the left, the agent's 440 Hz on the right; a paused span
// is silent and listed; the part is stored done, with its length, when the call ends; the
// softphone is told the recording's state as it changes.
func TestCallIsRecordedWithAPause(t *testing.T) {
	dir, h, ann, id, stream := recordedCall(t, false)
	expect(t, ann, "recording", func(m agentsim.SoftphoneMessage) bool { return m.Type == signal.TypeCall && m.Recording == "recording" })

	ann.Agent.ResetRecording()
	redistest.Eventually(t, 10*time.Second, "two seconds of audio both ways", func() bool {
		return len(stream.recent(1<<20)) >= 16000 && len(ann.Agent.Recording()) >= 16000
	})
	ann.Send(map[string]any{"type": signal.TypeRecord, "state": "paused"})
	expect(t, ann, "paused", func(m agentsim.SoftphoneMessage) bool { return m.Type == signal.TypeCall && m.Recording == "paused" })
	stream.reset()
	redistest.Eventually(t, 10*time.Second, "a second paused", func() bool { return len(stream.recent(1<<20)) >= 8000 })
	ann.Send(map[string]any{"type": signal.TypeRecord, "state": "recording"})
	expect(t, ann, "recording again", func(m agentsim.SoftphoneMessage) bool { return m.Type == signal.TypeCall && m.Recording == "recording" })
	stream.reset()
	redistest.Eventually(t, 10*time.Second, "another second recorded", func() bool { return len(stream.recent(1<<20)) >= 8000 })
	stream.hangUp()
	expect(t, ann, "the end", typed(signal.TypeEnded, id))

	var part store.RecordingPart
	redistest.Eventually(t, 10*time.Second, "the part stored done", func() bool {
		parts, err := h.st.RecordingParts(context.Background(), id)
		if err != nil || len(parts) != 1 {
			return false
		}
		part = parts[0]
		return part.State == store.RecordingDone
	})
	if part.DurationMS < 3000 || len(part.Paused) != 1 || part.Instance != h.opts.Instance {
		t.Fatalf("part %+v: want 3 s or more, one paused span, this instance", part)
	}
	path := dir.Path(part.File)
	span := part.Paused[0]
	if span.To-span.From < 800*time.Millisecond {
		t.Fatalf("paused span %+v, want about a second", span)
	}
	// The talk before the pause (two seconds or more): the caller left, the agent right, not
	// crossed. The whole span is read, not one second of it: on a starved machine a side's
	// sender may miss a few hundred milliseconds of ticks, which the recording rightly keeps
	// as silence; the level asked for (0.01) is ten times what a crossed channel may show.
	callerL, callerR := channelPower(t, path, 200*time.Millisecond, span.From-200*time.Millisecond, 1000)
	agentL, agentR := channelPower(t, path, 200*time.Millisecond, span.From-200*time.Millisecond, 440)
	t.Logf("before the pause: caller 1 kHz left %.4f right %.4f; agent 440 Hz left %.4f right %.4f", callerL, callerR, agentL, agentR)
	if callerL < 0.01 || agentR < 0.01 || callerR > 0.001 || agentL > 0.001 {
		t.Errorf("before the pause: caller 1 kHz left %.4f right %.4f; agent 440 Hz left %.4f right %.4f", callerL, callerR, agentL, agentR)
	}
	pl, pr := channelPower(t, path, span.From+40*time.Millisecond, span.To-40*time.Millisecond, 1000)
	ql, qr := channelPower(t, path, span.From+40*time.Millisecond, span.To-40*time.Millisecond, 440)
	if pl+pr+ql+qr != 0 {
		t.Errorf("the paused span is not silent: %.5f %.5f %.5f %.5f", pl, pr, ql, qr)
	}
}

// With recording on demand, a call is recorded only once its agent starts it.
func TestRecordingOnDemand(t *testing.T) {
	_, h, ann, id, stream := recordedCall(t, true)
	expect(t, ann, "the call", func(m agentsim.SoftphoneMessage) bool { return m.Type == signal.TypeCall && m.State == "in-progress" })
	redistest.Eventually(t, 10*time.Second, "audio", func() bool { return len(stream.recent(1<<20)) >= 8000 })
	if parts, err := h.st.RecordingParts(context.Background(), id); err != nil || len(parts) != 0 {
		t.Fatalf("recorded before the agent asked: %+v %v", parts, err)
	}
	ann.Send(map[string]any{"type": signal.TypeRecord, "state": "recording"})
	expect(t, ann, "recording", func(m agentsim.SoftphoneMessage) bool { return m.Type == signal.TypeCall && m.Recording == "recording" })
	stream.hangUp()
	redistest.Eventually(t, 10*time.Second, "the part stored done", func() bool {
		parts, err := h.st.RecordingParts(context.Background(), id)
		return err == nil && len(parts) == 1 && parts[0].State == store.RecordingDone
	})
}
