package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/switchboard/switchboard/call"
)

// Instances of Switchboard tell each other about agents and calls over Redis Pub/Sub: each
// instance listens on a channel of its own (ring this agent, this call ended, this agent
// logged in elsewhere), on the agents channel (an agent became free: queued calls may be
// offered), and on the calls channel the event script publishes to on every state change.
// Pub/Sub delivers at most once, so every listener also has a slower path that does not
// depend on a message arriving.

func (k keys) instanceChannel(id string) string { return k.ns + ":instance:" + id }
func (k keys) agentsChannel() string            { return k.ns + ":agents" }

// NoticeKind says which channel a notice came from. The zero value is unknown.
type NoticeKind int8

const (
	NoticeUnknown NoticeKind = iota
	// NoticeSubscribed: the subscription was (re)established; messages may have been missed
	// while it was down.
	NoticeSubscribed
	NoticeInstance  // a message for this instance, Payload as sent
	NoticeAgentFree // an agent became free to take a call
	NoticeCall      // a call changed state: CallID and State
	// NoticeAgentRevoked: Agent's token was rotated (TokenID is the one now in force) or the
	// agent was deleted (TokenID is empty); its other sessions must end.
	NoticeAgentRevoked
)

// Notice is one message received by Listen.
type Notice struct {
	Kind    NoticeKind
	Payload string
	CallID  string
	State   call.State
	Agent   string
	TokenID string
}

// NotifyInstance sends payload to the instance with that id.
func (r *Redis) NotifyInstance(ctx context.Context, instance string, payload []byte) error {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	if err := r.rdb.Publish(ctx, r.keys.instanceChannel(instance), payload).Err(); err != nil {
		return fmt.Errorf("store: notify instance %s: %w", instance, err)
	}
	return nil
}

// NotifyAgentFree tells every instance that an agent may be offered a call now.
func (r *Redis) NotifyAgentFree(ctx context.Context, agent string) error {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	if err := r.rdb.Publish(ctx, r.keys.agentsChannel(), agent).Err(); err != nil {
		return fmt.Errorf("store: notify agent free: %w", err)
	}
	return nil
}

// Listen delivers the notices for instance to fn, in order, from one goroutine, until ctx
// ends. fn is called with NoticeSubscribed each time the subscription is (re)established.
func (r *Redis) Listen(ctx context.Context, instance string, fn func(Notice)) error {
	own, agents, calls := r.keys.instanceChannel(instance), r.keys.agentsChannel(), r.keys.channel()
	revoked := r.keys.revokedChannel()
	return r.subscribe(ctx, []string{own, agents, calls, revoked}, func(channel string) {
		// One confirmation per channel; report the one for our own channel.
		if channel == own {
			fn(Notice{Kind: NoticeSubscribed})
		}
	}, func(channel, payload string) {
		switch channel {
		case own:
			fn(Notice{Kind: NoticeInstance, Payload: payload})
		case agents:
			fn(Notice{Kind: NoticeAgentFree, Payload: payload})
		case calls:
			for line := range callChanges(payload) {
				id, state, _ := strings.Cut(line, " ")
				st, _ := call.ParseState(state)
				fn(Notice{Kind: NoticeCall, Payload: line, CallID: id, State: st})
			}
		case revoked:
			agent, token := parseRevoked(payload)
			fn(Notice{Kind: NoticeAgentRevoked, Payload: payload, Agent: agent, TokenID: token})
		}
	})
}
