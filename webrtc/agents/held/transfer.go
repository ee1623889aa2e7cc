package held

import (
	"context"
	"time"

	"github.com/switchboard/switchboard/store/agentdb"
)

// Blind transfer: an agent hands its call to another agent, on any instance. The target is
// reserved and rung as the queue would ring it (store/agentdb's TransferOffer); the
// transferring agent is released at once and wraps up; the caller hears the hold tone while
// the target rings. A target that lets it ring out or declines it gives the call back to the
// transferring agent, rung again (a ring-back), or, when that agent cannot take it (offline,
// on another call), to the queue.

// Transferred: the call's agent from handed it to the agent offer o rings. from's side lets
// go, the caller hears the hold tone while o.Agent rings, and the call waits for an agent
// again for up to the queue timeout from now.
func (c *Call) Transferred(from string, o agentdb.Offer) {
	c.mu.Lock()
	if c.phase != phaseAnswered || c.agent != from {
		c.mu.Unlock()
		return
	}
	old := c.sink.Swap(nil)
	others := c.closeRoomLocked(old)
	if c.lostTimer != nil {
		c.lostTimer.Stop()
		c.lostTimer = nil
	}
	c.transferFrom = from
	c.phase, c.agent, c.agentInstance = phaseRinging, o.Agent, o.AgentInstance
	c.queueDeadline = time.Now().Add(c.opts.QueueTimeout)
	if c.queueTimer != nil {
		c.queueTimer.Stop()
	}
	c.queueTimer = c.host.After(c.opts.QueueTimeout, c.queueTimedOut)
	c.startToneLocked()
	c.mu.Unlock()
	endTransferred(old, others)
	c.ringFor(o)
}

// ringBack rings agent, who transferred the call, for it again; false if it cannot take it.
func (c *Call) ringBack(agent string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), OpTimeout)
	defer cancel()
	o, err := c.opts.Store.RingBack(ctx, c.id, agent, c.opts.RingTimeout)
	if err != nil {
		c.opts.Log.Info("agents: a transferred call nobody took goes to the queue", "call", c.id, "agent", agent, "err", err)
		return false
	}
	c.ringFor(o)
	return true
}
