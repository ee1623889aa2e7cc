package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Faults are the ways the simulated carrier misbehaves. They can be changed at any time
// (SetFaults, POST /sim/faults); the zero Faults is a healthy carrier.
type Faults struct {
	// RESTErrorRate (0..1) of carrier API requests are answered with RESTErrorStatus
	// (default 503) in the carrier's error shape, and have no effect.
	RESTErrorRate   float64
	RESTErrorStatus int
	// RESTLatency delays every carrier API answer.
	RESTLatency time.Duration
	// RESTHang makes carrier API requests never answer: the connection is dropped when the
	// client gives up.
	RESTHang bool
	// CallbackDropRate (0..1) of callbacks and webhooks are never sent, while calls go on:
	// the carrier-side callback outage of the 2018 incident. Twilio voice webhooks (the
	// requests that fetch TwiML) still go out, or the call could not proceed.
	CallbackDropRate float64
	// CallbackDelay holds every callback that long after it fires.
	CallbackDelay time.Duration
	// DuplicateRate (0..1) of callbacks are sent twice.
	DuplicateRate float64
	// Reorder swaps each call's callbacks in pairs: a callback is held until the call's next
	// one fires, which is sent first, or until ReorderHold (default 1 s) passes.
	Reorder     bool
	ReorderHold time.Duration
	// Outage is a total outage: carrier API requests get 503 and nothing is sent to
	// Switchboard (callbacks, webhooks, TwiML fetches); calls already up stay up.
	Outage bool
	// OutageOn and OutageOff, both set, make the outage intermittent: out for OutageOn, well
	// for OutageOff, and so on, starting (out) when they were set.
	OutageOn  time.Duration
	OutageOff time.Duration
}

// faultsJSON is Faults on the wire: durations as Go duration strings ("250ms").
type faultsJSON struct {
	RESTErrorRate    float64  `json:"rest_error_rate"`
	RESTErrorStatus  int      `json:"rest_error_status"`
	RESTLatency      duration `json:"rest_latency"`
	RESTHang         bool     `json:"rest_hang"`
	CallbackDropRate float64  `json:"callback_drop_rate"`
	CallbackDelay    duration `json:"callback_delay"`
	DuplicateRate    float64  `json:"duplicate_rate"`
	Reorder          bool     `json:"reorder"`
	ReorderHold      duration `json:"reorder_hold"`
	Outage           bool     `json:"outage"`
	OutageOn         duration `json:"outage_on"`
	OutageOff        duration `json:"outage_off"`
}

func (f Faults) wire() faultsJSON {
	return faultsJSON{
		RESTErrorRate: f.RESTErrorRate, RESTErrorStatus: f.RESTErrorStatus,
		RESTLatency: duration(f.RESTLatency), RESTHang: f.RESTHang,
		CallbackDropRate: f.CallbackDropRate, CallbackDelay: duration(f.CallbackDelay),
		DuplicateRate: f.DuplicateRate, Reorder: f.Reorder, ReorderHold: duration(f.ReorderHold),
		Outage: f.Outage, OutageOn: duration(f.OutageOn), OutageOff: duration(f.OutageOff),
	}
}

func (w faultsJSON) faults() Faults {
	return Faults{
		RESTErrorRate: w.RESTErrorRate, RESTErrorStatus: w.RESTErrorStatus,
		RESTLatency: time.Duration(w.RESTLatency), RESTHang: w.RESTHang,
		CallbackDropRate: w.CallbackDropRate, CallbackDelay: time.Duration(w.CallbackDelay),
		DuplicateRate: w.DuplicateRate, Reorder: w.Reorder, ReorderHold: time.Duration(w.ReorderHold),
		Outage: w.Outage, OutageOn: time.Duration(w.OutageOn), OutageOff: time.Duration(w.OutageOff),
	}
}

// MarshalJSON writes durations as strings such as "1.5s".
func (f Faults) MarshalJSON() ([]byte, error) { return json.Marshal(f.wire()) }

// UnmarshalJSON reads durations as strings ("250ms") or numbers of milliseconds. Fields
// absent from the JSON keep their value, so decoding onto the current faults changes only
// the ones named.
func (f *Faults) UnmarshalJSON(b []byte) error {
	w := f.wire()
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*f = w.faults()
	return nil
}

type duration time.Duration

func (d duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case string:
		p, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		*d = duration(p)
	case float64:
		*d = duration(v * float64(time.Millisecond))
	default:
		return fmt.Errorf("duration must be a string like \"250ms\" or milliseconds, not %s", b)
	}
	return nil
}

func (f Faults) validate() error {
	for name, r := range map[string]float64{
		"rest_error_rate": f.RESTErrorRate, "callback_drop_rate": f.CallbackDropRate, "duplicate_rate": f.DuplicateRate,
	} {
		if r < 0 || r > 1 {
			return fmt.Errorf("sim: %s %v is not between 0 and 1", name, r)
		}
	}
	if f.RESTErrorStatus != 0 && (f.RESTErrorStatus < 400 || f.RESTErrorStatus > 599) {
		return fmt.Errorf("sim: rest_error_status %d is not an HTTP error status", f.RESTErrorStatus)
	}
	for name, d := range map[string]time.Duration{
		"rest_latency": f.RESTLatency, "callback_delay": f.CallbackDelay, "reorder_hold": f.ReorderHold,
		"outage_on": f.OutageOn, "outage_off": f.OutageOff,
	} {
		if d < 0 {
			return fmt.Errorf("sim: %s %v is negative", name, d)
		}
	}
	return nil
}

// SetFaults replaces the faults in force. Intermittent outage windows restart when their
// lengths change.
func (c *Carrier) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.OutageOn != c.faults.OutageOn || f.OutageOff != c.faults.OutageOff {
		c.faultsFrom = time.Now()
	}
	c.faults = f
	c.log.Info("faults set", "faults", f)
	return nil
}

// Faults returns the faults in force.
func (c *Carrier) Faults() Faults {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.faults
}

// faultsNow returns the faults in force and whether the carrier is out right now.
func (c *Carrier) faultsNow() (Faults, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.faults
	if f.Outage {
		return f, true
	}
	if f.OutageOn > 0 && f.OutageOff > 0 {
		phase := time.Since(c.faultsFrom) % (f.OutageOn + f.OutageOff)
		return f, phase < f.OutageOn
	}
	return f, false
}

// carrierAPI wraps a carrier REST endpoint with the REST faults: latency first, then a hang,
// an outage, or an injected error.
func (c *Carrier) carrierAPI(kind Kind, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.count(func(s *Stats) { s.RESTRequests++ })
		f, out := c.faultsNow()
		if !c.sleep(r.Context(), f.RESTLatency) {
			panic(http.ErrAbortHandler)
		}
		if f.RESTHang {
			select {
			case <-r.Context().Done():
			case <-c.ctx.Done():
			}
			panic(http.ErrAbortHandler) // drop the connection without an answer
		}
		status := 0
		switch {
		case out || c.ctx.Err() != nil:
			status = http.StatusServiceUnavailable
		case c.chance(f.RESTErrorRate):
			status = f.RESTErrorStatus
			if status == 0 {
				status = http.StatusServiceUnavailable
			}
		}
		if status != 0 {
			c.count(func(s *Stats) { s.RESTErrorsInjected++ })
			writeAPIError(w, kind, status, 0, "")
			return
		}
		h(w, r)
	}
}
