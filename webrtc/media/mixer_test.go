package media

import (
	"fmt"
	"testing"
)

// mixRun feeds each slot's tone (nil: silent) to m for frames frames and returns what each
// slot heard.
func mixRun(m *Mixer, tones []*Tone, frames int) [][]byte {
	heard := make([][]byte, len(tones))
	in, out := make([][]byte, len(tones)), make([][]byte, len(tones))
	for i := range out {
		out[i] = make([]byte, FrameSamples)
	}
	for range frames {
		for i, t := range tones {
			in[i] = nil
			if t != nil {
				in[i] = t.Frame()
			}
		}
		m.Mix(in, out)
		for i := range out {
			heard[i] = append(heard[i], out[i]...)
		}
	}
	return heard
}

func addParties(t testing.TB, m *Mixer, n int) {
	t.Helper()
	for i := range n {
		if slot, ok := m.Add(); !ok || slot != i {
			t.Fatalf("Add: slot %d, %v; want %d", slot, ok, i)
		}
	}
}

// The tones are on 5 Hz bins so Goertzel over 1600 samples measures each one cleanly.
var partyHz = []float64{440, 1000, 1800, 2400}

const (
	heardPower  = 0.01  // a 0.3 tone gives about 0.09
	absentPower = 0.001 // -30 dBFS: the tone is not there
)

func TestMixerEachOfThreeHearsTheOtherTwoNotItself(t *testing.T) {
	m := NewMixer()
	addParties(t, m, 3)
	heard := mixRun(m, []*Tone{NewTone(partyHz[0], 0.3), NewTone(partyHz[1], 0.3), NewTone(partyHz[2], 0.3)}, 50)
	for l := range 3 {
		for s := range 3 {
			p := MiddlePower(heard[l], partyHz[s])
			switch {
			case l == s && p > absentPower:
				t.Errorf("party %d hears its own %.0f Hz at %.4f", l, partyHz[s], p)
			case l != s && p < heardPower:
				t.Errorf("party %d hears party %d's %.0f Hz at only %.4f", l, s, partyHz[s], p)
			}
		}
	}
}

func TestMixerTwoPartiesRelayTheBytes(t *testing.T) {
	m := NewMixer()
	addParties(t, m, 2)
	a, b := make([]byte, FrameSamples), make([]byte, FrameSamples)
	for i := range a {
		// 0x7F is a negative zero a decode and re-encode would turn into 0xFF.
		a[i], b[i] = byte(i), 0x7F
	}
	out := [][]byte{make([]byte, FrameSamples), make([]byte, FrameSamples)}
	m.Mix([][]byte{a, b}, out)
	if string(out[0]) != string(b) || string(out[1]) != string(a) {
		t.Errorf("two parties: frames changed on the way through")
	}
}

func TestMixerSilenceInSilenceOut(t *testing.T) {
	m := NewMixer()
	addParties(t, m, 4)
	silent := make([]byte, FrameSamples)
	FillSilence(silent)
	out := make([][]byte, 4)
	for i := range out {
		out[i] = make([]byte, FrameSamples)
	}
	// Silent frames, and slots that sent nothing (nil, or a frame of the wrong size).
	for _, in := range [][][]byte{{silent, silent, silent, silent}, {silent, nil, silent, {1, 2}}, nil} {
		for i := range out {
			out[i][0] = 0 // not silence: each must be written
		}
		m.Mix(in, out)
		for i, o := range out {
			for j, b := range o {
				if b != Silence {
					t.Fatalf("slot %d sample %d = %#02x, want silence", i, j, b)
				}
			}
		}
	}
}

func TestMixerClips(t *testing.T) {
	m := NewMixer()
	addParties(t, m, 3)
	loud, quiet := make([]byte, FrameSamples), make([]byte, FrameSamples)
	for i := range loud {
		// Near full scale, alternating sign: two of them sum far past 16 bits.
		loud[i], quiet[i] = EncodeUlaw(30000), EncodeUlaw(-30000)
		if i%2 == 1 {
			loud[i], quiet[i] = EncodeUlaw(-30000), EncodeUlaw(30000)
		}
	}
	out := [][]byte{make([]byte, FrameSamples), nil, nil}
	m.Mix([][]byte{nil, loud, loud}, out)
	for i, b := range out[0] {
		got, want := DecodeUlaw(b), DecodeUlaw(EncodeUlaw(32767))
		if i%2 == 1 {
			want = DecodeUlaw(EncodeUlaw(-32768))
		}
		if got != want {
			t.Fatalf("sample %d: %d, want clipped to %d (a wrap would flip its sign)", i, got, want)
		}
	}
	// Opposite phases cancel: near silence, not noise.
	m.Mix([][]byte{nil, loud, quiet}, out)
	for i, b := range out[0] {
		if v := DecodeUlaw(b); v > 1000 || v < -1000 {
			t.Fatalf("sample %d: %d, want the two to cancel", i, v)
		}
	}
}

func TestMixerRoles(t *testing.T) {
	const caller, agent, sup, other = 0, 1, 2, 3
	tests := []struct {
		name   string
		role   Role
		hears  [4][4]bool // [listener][speaker]
		target int
	}{
		{"barge", RoleTalk, [4][4]bool{
			{false, true, true, true}, {true, false, true, true}, {true, true, false, true}, {true, true, true, false}}, -1},
		{"listen", RoleListen, [4][4]bool{
			{false, true, false, true}, {true, false, false, true}, {true, true, false, true}, {true, true, false, false}}, -1},
		{"whisper", RoleWhisper, [4][4]bool{
			{false, true, false, true}, {true, false, true, true}, {true, true, false, true}, {true, true, false, false}}, agent},
		{"held", RoleHeld, [4][4]bool{
			{false, true, false, true}, {true, false, false, true}, {false, false, false, false}, {true, true, false, false}}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMixer()
			addParties(t, m, 4)
			if !m.SetRole(sup, tt.role, tt.target) {
				t.Fatalf("SetRole(%v) refused", tt.role)
			}
			heard := mixRun(m, []*Tone{NewTone(partyHz[0], 0.3), NewTone(partyHz[1], 0.3),
				NewTone(partyHz[2], 0.3), NewTone(partyHz[3], 0.3)}, 50)
			for l := range 4 {
				for s := range 4 {
					if got := m.Hears(l, s); got != tt.hears[l][s] {
						t.Errorf("Hears(%d, %d) = %v, want %v", l, s, got, tt.hears[l][s])
					}
					p := MiddlePower(heard[l], partyHz[s])
					if tt.hears[l][s] && p < heardPower || !tt.hears[l][s] && p > absentPower {
						t.Errorf("%d hears %d's tone at %.4f, want heard=%v", l, s, p, tt.hears[l][s])
					}
				}
			}
		})
	}
}

func TestMixerSlotsAndBadRoles(t *testing.T) {
	m := NewMixer()
	addParties(t, m, 3)
	if m.SetRole(5, RoleTalk, -1) || m.SetRole(0, RoleUnknown, -1) || m.SetRole(0, Role(99), -1) ||
		m.SetRole(0, RoleWhisper, 0) || m.SetRole(0, RoleWhisper, 7) || m.SetRole(-1, RoleTalk, -1) {
		t.Error("SetRole accepted a bad slot, role or whisper target")
	}
	if !m.SetRole(2, RoleWhisper, 1) {
		t.Fatal("whisper to 1 refused")
	}
	m.Remove(1)
	if slot, _ := m.Add(); slot != 1 || m.Hears(1, 2) {
		t.Errorf("the slot of a whisperer's target went to a newcomer (slot %d) who hears the whisper: %v", slot, m.Hears(1, 2))
	}
	m.Remove(1)
	m.Remove(1) // twice: ignored
	if m.Len() != 2 || m.Role(1) != RoleUnknown || m.Role(2) != RoleWhisper {
		t.Errorf("after removals: %d parties, roles %v %v", m.Len(), m.Role(1), m.Role(2))
	}
	for range MaxParties - 2 {
		if _, ok := m.Add(); !ok {
			t.Fatal("mixer full too early")
		}
	}
	if _, ok := m.Add(); ok {
		t.Error("Add past MaxParties succeeded")
	}
	for r := RoleUnknown; r <= RoleHeld; r++ {
		if ParseRole(r.String()) != r {
			t.Errorf("ParseRole(%q) != %v", r.String(), r)
		}
	}
	if ParseRole("shout") != RoleUnknown || Role(-3).String() != "unknown" {
		t.Error("unknown role names")
	}
}

// BenchmarkMixer mixes one 20 ms frame for every party of a conference where each talks.
// ns/frame is the cost of one Mix call (a frame for each party), ns/party-frame that divided
// by the parties.
func BenchmarkMixer(b *testing.B) {
	for _, n := range []int{2, 3, 4, 8} {
		b.Run(fmt.Sprintf("parties=%d", n), func(b *testing.B) {
			m := NewMixer()
			addParties(b, m, n)
			in, out := make([][]byte, n), make([][]byte, n)
			for i := range n {
				in[i] = NewTone(300+float64(i)*250, 0.3).Frame()
				out[i] = make([]byte, FrameSamples)
			}
			b.ResetTimer()
			for b.Loop() {
				m.Mix(in, out)
			}
			perFrame := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(perFrame, "ns/frame")
			b.ReportMetric(perFrame/float64(n), "ns/party-frame")
		})
	}
}
