package store

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// REDIS_URL may carry a password (redis://user:password@host:port). No error we return may
// print it: start-up errors end up in terminals, logs and bug reports.

// redactURL hides the user information of a Redis URL, or of each entry of a host list.
func redactURL(u string) string {
	parts := entries(redactPasswordParams(u))
	for i, p := range parts {
		at := strings.LastIndex(p, "@")
		if at < 0 {
			continue
		}
		if scheme, _, ok := strings.Cut(p, "://"); ok && len(scheme) < at {
			parts[i] = scheme + "://***@" + p[at+1:]
		} else {
			parts[i] = "***@" + p[at+1:]
		}
	}
	return strings.Join(parts, ",")
}

// entries splits a host list; a URL is one entry, whatever its password contains.
func entries(u string) []string {
	if strings.Contains(u, "://") {
		return []string{u}
	}
	return strings.Split(u, ",")
}

// userinfo returns the secret parts of u: whatever stands between the scheme (or the start of
// an entry) and its last '@', and the values of a failover URL's password parameters.
func userinfo(u string) []string {
	var out []string
	if _, query, ok := strings.Cut(u, "?"); ok {
		for _, p := range strings.Split(query, "&") {
			if name, v, _ := strings.Cut(p, "="); (name == "password" || name == "sentinel_password") && v != "" {
				out = append(out, v)
			}
		}
	}
	for _, p := range entries(u) {
		at := strings.LastIndex(p, "@")
		if at < 0 {
			continue
		}
		start := 0
		if i := strings.Index(p, "://"); i >= 0 && i < at {
			start = i + 3
		}
		if info := p[start:at]; info != "" {
			out = append(out, info)
			if _, pw, ok := strings.Cut(info, ":"); ok && pw != "" {
				out = append(out, pw)
			}
		}
	}
	return out
}

// redactedf formats an error about raw, then removes raw's user information from it
// wherever it appears, as the library errors folded into it may quote it. The result does
// not wrap: an unwrapped cause could print the secret.
func redactedf(raw, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	for _, s := range userinfo(raw) {
		msg = strings.ReplaceAll(msg, s, "***")
	}
	return errors.New(msg)
}

// parseURLError explains a REDIS_URL that does not parse. A URL parser's own message may quote
// any part of the URL, escapes of the password included; with user information present only
// the redacted URL is shown.
func parseURLError(raw string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if len(userinfo(raw)) > 0 {
			return fmt.Errorf("store: REDIS_URL %s is not a valid URL: want redis://user:password@host:port/db", redactURL(raw))
		}
		return fmt.Errorf("store: REDIS_URL is not a valid URL: %w", ue.Err)
	}
	return redactedf(raw, "store: REDIS_URL: %v", err)
}
