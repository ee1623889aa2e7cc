// Package redisurl turns REDIS_URL into a go-redis client (one node, Sentinel or Cluster)
// with the timeouts that make "Redis down" a fast answer, and keeps its password out of every
// error and log line. Package store is its only user.
package redisurl

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// NewClient builds a client from REDIS_URL: a URL is one node, or Sentinel when it names a
// master_name (go-redis's failover URL); a comma-separated host:port list is a Cluster.
func NewClient(url string) (redis.UniversalClient, error) {
	if strings.Contains(url, "://") && IsFailover(url) {
		return newFailoverClient(url)
	}
	if strings.Contains(url, "://") {
		o, err := redis.ParseURL(url)
		if err != nil {
			return nil, parseURLError(url, err)
		}
		return redis.NewClient(Tuned(o)), nil
	}
	var addrs []string
	for _, a := range strings.Split(url, ",") {
		a = strings.TrimSpace(a)
		if strings.Contains(a, "@") {
			return nil, errors.New("store: REDIS_URL: a host:port list carries no user or password; use redis://user:password@host:port for one node")
		}
		if _, port, ok := strings.Cut(a, ":"); !ok || a == "" || port == "" {
			return nil, Redactedf(url, "store: REDIS_URL: %q is neither a redis:// URL nor a host:port list", url)
		}
		addrs = append(addrs, a)
	}
	if len(addrs) == 1 {
		return redis.NewClient(Tuned(&redis.Options{Addr: addrs[0]})), nil
	}
	c := &redis.ClusterOptions{Addrs: addrs}
	t := Tuned(&redis.Options{})
	c.ContextTimeoutEnabled, c.DialTimeout, c.ReadTimeout, c.WriteTimeout, c.PoolTimeout =
		t.ContextTimeoutEnabled, t.DialTimeout, t.ReadTimeout, t.WriteTimeout, t.PoolTimeout
	return redis.NewClusterClient(c), nil
}

// Tuned sets the timeouts that make "Redis down" a fast 503 instead of a hung carrier
// request: go-redis ignores context deadlines on socket I/O unless told otherwise, and its
// default read timeout is 5 s.
func Tuned(o *redis.Options) *redis.Options {
	o.ContextTimeoutEnabled = true
	o.DialTimeout = 2 * time.Second
	o.ReadTimeout = time.Second
	o.WriteTimeout = time.Second
	o.PoolTimeout = time.Second
	return o
}

// IsFailover reports whether a redis:// URL names Sentinels (go-redis's failover URL:
// redis://[user:pass@]sentinel:26379?master_name=NAME&addr=sentinel2:26379...) rather than
// one Redis.
func IsFailover(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Query().Has("master_name")
}

// newFailoverClient connects through Sentinel to whichever node is the primary now, and
// follows it when Sentinel promotes a replica. The URL's user and password are the
// Sentinels'; the primary's password goes in a password= query parameter.
func newFailoverClient(raw string) (*redis.Client, error) {
	o, err := redis.ParseFailoverURL(raw)
	if err != nil {
		return nil, fmt.Errorf("store: REDIS_URL (Sentinel): %w", err)
	}
	if o.MasterName == "" {
		return nil, errors.New("store: REDIS_URL (Sentinel): master_name is empty")
	}
	t := Tuned(&redis.Options{})
	o.ContextTimeoutEnabled, o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout =
		t.ContextTimeoutEnabled, t.DialTimeout, t.ReadTimeout, t.WriteTimeout, t.PoolTimeout
	return redis.NewFailoverClient(o), nil
}

// REDIS_URL may carry a password (redis://user:password@host:port). No error we return may
// print it: start-up errors end up in terminals, logs and bug reports.

// Redact hides the user information of a Redis URL, or of each entry of a host list.
func Redact(u string) string {
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

// Redactedf formats an error about raw, then removes raw's user information from it
// wherever it appears, as the library errors folded into it may quote it. The result does
// not wrap: an unwrapped cause could print the secret.
func Redactedf(raw, format string, args ...any) error {
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
			return fmt.Errorf("store: REDIS_URL %s is not a valid URL: want redis://user:password@host:port/db", Redact(raw))
		}
		return fmt.Errorf("store: REDIS_URL is not a valid URL: %w", ue.Err)
	}
	return Redactedf(raw, "store: REDIS_URL: %v", err)
}

// redactPasswordParams hides the password parameters of a URL: a Sentinel URL carries the
// primary's password as a query parameter, not as user information.
func redactPasswordParams(u string) string {
	base, query, ok := strings.Cut(u, "?")
	if !ok {
		return u
	}
	params := strings.Split(query, "&")
	for i, p := range params {
		if name, _, _ := strings.Cut(p, "="); name == "password" || name == "sentinel_password" {
			params[i] = name + "=***"
		}
	}
	return base + "?" + strings.Join(params, "&")
}
