package webrtc

// Internals the external tests (package webrtc_test, which may import agentsim) look at.

// FromAgent feeds the bridge one payload of the agent's audio, as the peer's reader does.
func (b *Bridge) FromAgent(ulaw []byte) { b.fromAgent(ulaw) }

// PendingCandidates is how many trickled candidates the peer holds until the offer comes.
func (p *Peer) PendingCandidates() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending)
}

const MaxPendingCandidates = maxPendingCandidates

// LocalSDP is the peer's local description (its answer, with the candidates gathered so far).
func (p *Peer) LocalSDP() string { return p.pc.LocalDescription().SDP }
