package main

import (
	"crypto/ed25519"
	"encoding/base64"

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
