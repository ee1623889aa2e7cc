package store

import "strings"

// An agent's sessions end at once, on every instance, when its token is rotated or the agent
// is deleted: store/agentdb publishes "<agent> <token id>" on the revoked channel (an empty
// token id: the agent is gone), and Listen hands each instance a NoticeAgentRevoked.

func (k keys) revokedChannel() string { return k.ns + ":agents:revoked" }

// parseRevoked reads a revoked channel message: the agent, and the token id now in force ("":
// the agent was deleted).
func parseRevoked(payload string) (agent, token string) {
	agent, token, _ = strings.Cut(payload, " ")
	return agent, token
}
