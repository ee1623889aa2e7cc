package webhooks

import "github.com/labstack/echo/v4"

// Register mounts every carrier-facing route on e. Each is registered with and without a
// trailing slash, so both variants a carrier might be configured with get the same answer
// directly: a carrier must never see a 3xx (a redirected POST loses its body and signature,
// and redirects multiplied the connections in the incident Switchboard was built after).
func (s *Server) Register(e *echo.Echo) {
	for _, slash := range []string{"", "/"} {
		e.POST("/webhooks/:carrier/voice"+slash, s.handleTwilioVoice())
		e.POST("/webhooks/:carrier/status"+slash, s.handleTwilioStatus())
		e.POST("/webhooks/:carrier/events"+slash, s.handleTelnyxEvents())
		e.GET("/webhooks/:carrier/media/:call"+slash, s.handleMedia()) // a call's own stream
		e.GET("/webhooks/:carrier/media"+slash, s.handleMedia())       // legacy: the start frame names the call
	}
}
