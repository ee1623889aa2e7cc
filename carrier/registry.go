package carrier

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/switchboard/switchboard/store"
)

// configStore is where carrier configurations live; *carrierdb.Store implements it.
type configStore interface {
	Carriers(ctx context.Context) (map[string][]byte, error)
	PutCarrier(ctx context.Context, id string, config []byte, a store.Audit) error
	DeleteCarrier(ctx context.Context, id string, a store.Audit) error
	WatchConfig(ctx context.Context, changed func()) error
}

// Registry is every configured carrier, read from the store and kept in memory so that the
// callback path (which verifies every request with a carrier's credentials) and call
// placement never wait on Redis for it. Every instance reloads when any instance changes the
// configuration.
type Registry struct {
	st   configStore
	hc   *http.Client
	log  *slog.Logger
	snap atomic.Pointer[snapshot]
	mu   sync.Mutex // serialises loads, so an older read cannot replace a newer one
}

type snapshot struct {
	byID    map[string]*entry
	ordered []*entry // by priority, then id
}

type entry struct {
	cfg    Config
	client Client
}

// NewRegistry returns an empty registry; Load fills it.
func NewRegistry(st configStore, hc *http.Client, log *slog.Logger) *Registry {
	r := &Registry{st: st, hc: hc, log: log}
	r.snap.Store(&snapshot{byID: map[string]*entry{}})
	return r
}

// Load reads every carrier from the store. A stored configuration that no longer validates
// (written by a newer version, or by hand) is logged and left out rather than stopping the
// others.
func (r *Registry) Load(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	raw, err := r.st.Carriers(ctx)
	if err != nil {
		return err
	}
	next := &snapshot{byID: make(map[string]*entry, len(raw))}
	for id, b := range raw {
		var cfg Config
		if err := json.Unmarshal(b, &cfg); err != nil {
			r.log.Error("stored carrier configuration is unreadable; carrier skipped", "carrier", id, "err", err)
			continue
		}
		if err := cfg.Normalize(); err != nil {
			r.log.Error("stored carrier configuration is invalid; carrier skipped", "carrier", id, "err", err)
			continue
		}
		client, err := NewClient(cfg, r.hc)
		if err != nil {
			r.log.Error("carrier client not built; carrier skipped", "carrier", id, "err", err)
			continue
		}
		e := &entry{cfg: cfg, client: client}
		next.byID[id] = e
		next.ordered = append(next.ordered, e)
	}
	slices.SortFunc(next.ordered, func(a, b *entry) int {
		return cmp.Or(cmp.Compare(a.cfg.Priority, b.cfg.Priority), cmp.Compare(a.cfg.ID, b.cfg.ID))
	})
	r.snap.Store(next)
	return nil
}

// Watch reloads whenever the configuration changes anywhere, until ctx ends.
func (r *Registry) Watch(ctx context.Context) error {
	return r.st.WatchConfig(ctx, func() {
		if err := r.Load(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("carrier configuration not reloaded", "err", err)
		}
	})
}

// Get returns one carrier's configuration (with secrets: for in-process use only).
func (r *Registry) Get(id string) (Config, bool) {
	e, ok := r.snap.Load().byID[id]
	if !ok {
		return Config{}, false
	}
	return e.cfg, true
}

// Client returns the REST client of a carrier.
func (r *Registry) Client(id string) (Client, bool) {
	e, ok := r.snap.Load().byID[id]
	if !ok {
		return nil, false
	}
	return e.client, true
}

// All returns every carrier, by priority then id.
func (r *Registry) All() []Config {
	s := r.snap.Load()
	out := make([]Config, len(s.ordered))
	for i, e := range s.ordered {
		out[i] = e.cfg
	}
	return out
}

// ErrNotFound is returned for a carrier id that is not configured.
var ErrNotFound = errors.New("carrier: not found")

// Put validates and stores a carrier's configuration on behalf of actor. Secrets left out of
// cfg keep their stored values (they are write-only), as MergeSecrets allows.
func (r *Registry) Put(ctx context.Context, cfg Config, actor string) (Config, error) {
	old, existed := r.Get(cfg.ID)
	if existed {
		cfg.MergeSecrets(old)
	}
	if err := cfg.Normalize(); err != nil {
		return Config{}, err
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return Config{}, err
	}
	detail, _ := json.Marshal(cfg.Public())
	action := "carrier.create"
	if existed {
		action = "carrier.update"
	}
	if err := r.st.PutCarrier(ctx, cfg.ID, b, store.Audit{Actor: actor, Action: action, Target: cfg.ID, Detail: string(detail)}); err != nil {
		return Config{}, err
	}
	return cfg, r.Load(ctx)
}

// Delete removes a carrier on behalf of actor.
func (r *Registry) Delete(ctx context.Context, id, actor string) error {
	err := r.st.DeleteCarrier(ctx, id, store.Audit{Actor: actor, Action: "carrier.delete", Target: id})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return err
	}
	return r.Load(ctx)
}
