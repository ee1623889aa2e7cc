package main

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// The naive prototype issue #17 measures Switchboard against: the simplest server that
// stores a verified callback before its 204. It verifies the signature the plain way
// (url.Values, sort, HMAC-SHA1) and stores each callback with one HSET, pipelined with the
// HSETs of concurrent requests over one connection; no dedupe, no ordering, no history, no
// call-detail record, no wake-ups, no ownership. Its Redis client is a few lines of RESP, so
// this command needs no Redis library (go-redis belongs to store).

// serveProto serves the prototype on addr, storing into the Redis at redisAddr (host:port).
func serveProto(addr, redisAddr, token, publicURL string) error {
	conn, err := net.Dial("tcp", redisAddr)
	if err != nil {
		return err
	}
	p := &protoStore{in: make(chan protoWrite, 4096)}
	go p.run(conn) // owned by the process: the prototype runs until it is killed
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Server.ReadHeaderTimeout, e.Server.ReadTimeout, e.Server.WriteTimeout, e.Server.IdleTimeout =
		5*time.Second, 15*time.Second, 15*time.Second, 180*time.Second
	e.POST("/webhooks/:carrier/status", func(c echo.Context) error {
		body, err := io.ReadAll(io.LimitReader(c.Request().Body, 64<<10))
		if err != nil {
			return c.NoContent(http.StatusBadRequest)
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return c.NoContent(http.StatusBadRequest)
		}
		names := make([]string, 0, len(form))
		for name := range form {
			names = append(names, name)
		}
		slices.Sort(names)
		var s strings.Builder
		s.WriteString(publicURL + c.Request().RequestURI)
		for _, name := range names {
			for _, v := range form[name] {
				s.WriteString(name)
				s.WriteString(v)
			}
		}
		mac := hmac.New(sha1.New, []byte(token))
		mac.Write([]byte(s.String()))
		want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
		if !hmac.Equal([]byte(want), []byte(c.Request().Header.Get("X-Twilio-Signature"))) {
			return c.NoContent(http.StatusForbidden)
		}
		done := make(chan error, 1)
		p.in <- protoWrite{key: "proto:{" + form.Get("CallSid") + "}", status: form.Get("CallStatus"), done: done}
		if err := <-done; err != nil {
			return c.NoContent(http.StatusServiceUnavailable)
		}
		return c.NoContent(http.StatusNoContent)
	})
	e.GET("/healthz", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	return e.Start(addr)
}

type protoWrite struct {
	key, status string
	done        chan error
}

type protoStore struct {
	in chan protoWrite
}

// run writes the HSETs queued at once as one pipeline and reads their replies, over and over.
func (p *protoStore) run(conn net.Conn) {
	w, r := bufio.NewWriter(conn), bufio.NewReader(conn)
	batch := make([]protoWrite, 0, 128)
	for first := range p.in {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < cap(batch) {
			select {
			case x := <-p.in:
				batch = append(batch, x)
			default:
				break fill
			}
		}
		for _, x := range batch {
			writeRESP(w, "HSET", x.key, "status", x.status)
		}
		err := w.Flush()
		for _, x := range batch {
			if err == nil {
				var line string
				if line, err = r.ReadString('\n'); err == nil && !strings.HasPrefix(line, ":") {
					err = fmt.Errorf("redis: %s", strings.TrimSpace(line))
				}
			}
			x.done <- err
		}
	}
}

func writeRESP(w *bufio.Writer, args ...string) {
	_, _ = w.WriteString("*" + strconv.Itoa(len(args)) + "\r\n") // errors surface at Flush
	for _, a := range args {
		_, _ = w.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
}
