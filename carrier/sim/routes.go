package sim

import "net/http"

// routes lists everything the simulator serves: the two carrier APIs (with REST faults
// applied) and its own control API under /sim.
func (c *Carrier) routes(mux *http.ServeMux) {
	const calls = "/2010-04-01/Accounts/{account}/Calls"
	mux.HandleFunc("POST "+calls+".json", c.carrierAPI(Twilio, c.handleTwilioCreate))
	mux.HandleFunc("POST "+calls+"/{file}", c.carrierAPI(Twilio, c.handleTwilioUpdate))
	mux.HandleFunc("GET "+calls+"/{file}", c.carrierAPI(Twilio, c.handleTwilioFetch))

	mux.HandleFunc("POST /v2/calls", c.carrierAPI(Telnyx, c.handleTelnyxDial))
	mux.HandleFunc("GET /v2/calls/{id}", c.carrierAPI(Telnyx, c.handleTelnyxGet))
	mux.HandleFunc("POST /v2/calls/{id}/actions/{action}", c.carrierAPI(Telnyx, c.handleTelnyxAction))

	mux.HandleFunc("GET /sim/stats", c.handleStats)
	mux.HandleFunc("GET /sim/faults", c.handleGetFaults)
	mux.HandleFunc("POST /sim/faults", c.handleSetFaults)
	mux.HandleFunc("DELETE /sim/faults", c.handleClearFaults)
	mux.HandleFunc("POST /sim/inbound", c.handleInbound)
	mux.HandleFunc("GET /sim/calls", c.handleCalls)
	mux.HandleFunc("GET /sim/calls/{sid}", c.handleCall)
	mux.HandleFunc("POST /sim/calls/{sid}/hangup", c.handleHangup)
	mux.HandleFunc("POST /sim/calls/{sid}/dtmf", c.handleDigits)
	mux.HandleFunc("GET /sim/deliveries", c.handleDeliveries)
	mux.HandleFunc("GET /sim/telnyx/public-key", c.handlePublicKey)
	mux.HandleFunc("GET /sim/credentials", c.handleCredentials)
}
