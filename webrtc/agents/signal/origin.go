package signal

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// ParseOrigin reads a browser origin, "https://host[:port]", as SWITCHBOARD_ALLOWED_ORIGINS
// lists them, and returns it in the form compared: lower case, with the scheme's default port
// left out. A path, query, fragment or user name is refused: an origin has none.
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return "", fmt.Errorf("%q is not an origin: want scheme://host[:port], e.g. https://agents.example.com", s)
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if port == "80" && scheme == "http" || port == "443" && scheme == "https" {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		return scheme + "://" + host + ":" + port, nil
	}
	return scheme + "://" + host, nil
}

// Origins is the set of browser origins whose pages may open a softphone socket: the public
// URL's, and those configured. The request's own Host never counts: a page on a name the
// attacker controls, re-pointed at our address (DNS rebinding), would send that very Host.
type Origins struct {
	allowed map[string]bool
	// loopbackPort is the public URL's port when it is a loopback address (the demo): any
	// loopback name for it is the same machine, so localhost and 127.0.0.1 both work.
	loopbackScheme, loopbackPort string
}

// NewOrigins allows publicURL's origin and those in extra (as ParseOrigin reads them).
func NewOrigins(publicURL string, extra []string) Origins {
	o := Origins{allowed: map[string]bool{}}
	for _, s := range append([]string{publicURL}, extra...) {
		if v, err := ParseOrigin(s); err == nil {
			o.allowed[v] = true
		}
	}
	if u, err := url.Parse(publicURL); err == nil && loopbackName(u.Hostname()) {
		o.loopbackScheme, o.loopbackPort = u.Scheme, u.Port()
	}
	return o
}

func loopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Allow says whether a request may open a softphone socket. Clients that are not browsers
// send no Origin and are let through: they have to present a token like everyone else, and
// no page can make a browser leave the header out.
func (o Origins) Allow(r *http.Request) bool {
	raw := r.Header.Get("Origin")
	if raw == "" {
		return true
	}
	v, err := ParseOrigin(raw)
	if err != nil {
		return false
	}
	if o.allowed[v] {
		return true
	}
	if o.loopbackScheme == "" {
		return false
	}
	u, _ := url.Parse(v)
	return u.Scheme == o.loopbackScheme && u.Port() == o.loopbackPort && loopbackName(u.Hostname())
}
