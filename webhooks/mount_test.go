package webhooks

import "github.com/labstack/echo/v4"

// mount mounts the carrier-facing routes on e as cmd/switchboard/routes.go does (each with
// and without a trailing slash), so the tests here, TestNoRedirects among them, exercise the
// surface the server serves.
func mount(e *echo.Echo, s *Server) {
	for _, slash := range []string{"", "/"} {
		e.POST("/webhooks/:carrier/voice"+slash, s.HandleTwilioVoice())
		e.POST("/webhooks/:carrier/status"+slash, s.HandleTwilioStatus())
		e.POST("/webhooks/:carrier/events"+slash, s.HandleTelnyxEvents())
		e.GET("/webhooks/:carrier/media/:call"+slash, s.HandleMedia())
		e.GET("/webhooks/:carrier/media"+slash, s.HandleMedia())
	}
}
