package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// A ticket is a short-lived, single-use stand-in for a bearer token, for the one kind of
// request that cannot carry an Authorization header: a browser's EventSource. The console
// trades its token for a ticket (an authenticated POST) and puts the ticket in the stream's
// URL, where a proxy's access log or the browser's history may keep it; by then it is spent
// or about to expire. Only the ticket's SHA-256 is stored, so reading Redis gives no ticket.

func (k keys) ticket(hash string) string { return k.ns + ":ticket:" + hash }

// NewTicket returns a fresh random ticket: 256 bits, hex.
func NewTicket() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func ticketHash(ticket string) string {
	h := sha256.Sum256([]byte(ticket))
	return hex.EncodeToString(h[:])
}

// IssueTicket stores ticket for ttl, standing for who (an opaque string the caller reads back).
func (r *Redis) IssueTicket(ctx context.Context, ticket, who string, ttl time.Duration) error {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	if err := r.rdb.Set(ctx, r.keys.ticket(ticketHash(ticket)), who, ttl).Err(); err != nil {
		return fmt.Errorf("store: issue ticket: %w", err)
	}
	return nil
}

// RedeemTicket spends ticket and returns who it stands for; ErrNotFound when it is unknown,
// spent or expired. Reading and deleting is one command, so two requests racing with the
// same ticket cannot both have it.
func (r *Redis) RedeemTicket(ctx context.Context, ticket string) (string, error) {
	if len(ticket) != 64 {
		return "", ErrNotFound
	}
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	who, err := r.rdb.GetDel(ctx, r.keys.ticket(ticketHash(ticket))).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", ErrNotFound
	case err != nil:
		return "", fmt.Errorf("store: redeem ticket: %w", err)
	}
	return who, nil
}
