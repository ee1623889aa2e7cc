package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/webhooks"
)

// carrierCredentials lets the webhooks verify requests with the carriers' credentials, read
// from the in-memory registry on every request.
type carrierCredentials struct{ reg *carrier.Registry }

func (c carrierCredentials) Credentials(id string) (webhooks.Credentials, bool) {
	// A disabled carrier still gets its callbacks verified and stored: disabling stops new
	// calls, and the calls already on it must still be followed to their end.
	cfg, ok := c.reg.Get(id)
	if !ok {
		return webhooks.Credentials{}, false
	}
	switch cfg.Kind {
	case carrier.Twilio:
		return webhooks.Credentials{Kind: webhooks.KindTwilio, AuthToken: cfg.AuthToken}, true
	case carrier.Telnyx:
		key, err := base64.StdEncoding.DecodeString(cfg.PublicKey)
		if err != nil || len(key) != ed25519.PublicKeySize {
			return webhooks.Credentials{}, false
		}
		return webhooks.Credentials{Kind: webhooks.KindTelnyx, PublicKey: ed25519.PublicKey(key)}, true
	}
	return webhooks.Credentials{}, false
}

// telnyxAnswerer answers inbound Telnyx calls through the carrier's Call Control client.
type telnyxAnswerer struct{ reg *carrier.Registry }

func (t telnyxAnswerer) AnswerTelnyx(ctx context.Context, carrierID, callControlID, streamURL, callID string) error {
	client, ok := t.reg.Client(carrierID)
	tx, isTelnyx := client.(*carrier.TelnyxClient)
	if !ok || !isTelnyx {
		return fmt.Errorf("carrier %s is not a configured telnyx carrier", carrierID)
	}
	if r := tx.Answer(ctx, callControlID, streamURL, callID); r.Outcome != carrier.Accepted {
		return fmt.Errorf("answer on %s: %s", carrierID, r.Reason)
	}
	return nil
}
