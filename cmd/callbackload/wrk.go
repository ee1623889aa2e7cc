package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"time"
)

// The wrk driver: Debian's wrk (a C load generator, one thread) replays the same signed
// callbacks through cmd/callbackload/wrk/replay.lua. It costs a few µs of CPU per request
// where the Go driver costs about 30, so on a 2-core machine it leaves the server and Redis
// more of the machine, and is how the ratio to bare Echo is judged (issue #17).

// writeReplay writes w's callbacks, signed for base, in replay.lua's format: one a line,
// path and query, tab, signature, tab, body. Nothing in a Twilio form body or signature is a
// tab or a newline (the body is URL-encoded, the signature base64).
func writeReplay(path, base string, w *workload) error {
	w.sign(base)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	for _, cb := range w.items {
		_, _ = bw.WriteString(cb.path) // errors surface at Flush
		_ = bw.WriteByte('\t')
		_, _ = bw.WriteString(cb.sig)
		_ = bw.WriteByte('\t')
		_, _ = bw.Write(cb.body)
		_ = bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		_ = f.Close() // the write error is the one to report
		return err
	}
	return f.Close()
}

// signOfficially re-signs a replay file with Twilio's official Node helper library
// (cmd/callbackload/wrk/sign.mjs), as signer asks: "official" must, "auto" does when node and
// the library are installed, "own" keeps our signer's signatures. It returns what it said.
func signOfficially(ctx context.Context, signer, script, token, base, file string) (string, error) {
	if signer == "own" {
		return "signed by callbackload (webhooks.SignTwilio)", nil
	}
	dir := filepath.Dir(script)
	_, errNode := exec.LookPath("node")
	_, errLib := os.Stat(filepath.Join(dir, "node_modules", "twilio"))
	if errNode != nil || errLib != nil {
		if signer == "official" {
			return "", fmt.Errorf("signing with twilio-node needs node and `npm install --prefix %s`", dir)
		}
		return "signed by callbackload (twilio-node not installed: npm install --prefix " + dir + ")", nil
	}
	out, err := exec.CommandContext(ctx, "node", filepath.Join(dir, "sign.mjs"), token, base, file).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("sign.mjs: %w: %s", err, out)
	}
	return string(bytes.TrimSpace(out)), nil
}

// replayScript finds replay.lua beside this command's source: the command is run with
// `go run ./cmd/callbackload` from the module, or the path is given with -wrk-script.
func replayScript(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	candidates := []string{filepath.Join("cmd", "callbackload", "wrk", "replay.lua")}
	if _, file, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "wrk", "replay.lua"))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", errors.New("cmd/callbackload/wrk/replay.lua not found: run from the module's root or pass -wrk-script")
}

// wrkResult is what one wrk run reported.
type wrkResult struct {
	requests  int
	elapsed   time.Duration
	perSecond float64
	p50, p99  time.Duration
	non2xx    int
	sockErrs  int
	cpu       time.Duration // wrk's own CPU time
}

func (r wrkResult) line(name string) string {
	return fmt.Sprintf("%-34s %8.0f callbacks/s  p50 %6.2f ms  p99 %6.2f ms  non-2xx %d  socket errors %d  (wrk CPU %.1f µs per request)",
		name+":", r.perSecond, ms(r.p50), ms(r.p99), r.non2xx, r.sockErrs, float64(r.cpu)/float64(time.Microsecond)/float64(max(r.requests, 1)))
}

// runWrk runs one wrk over conns connections for d against base, replaying file.
func runWrk(ctx context.Context, script, file, base string, conns int, d time.Duration) (wrkResult, error) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return wrkResult{}, errors.New("wrk not found on PATH (Debian: apt-get install -y wrk)")
	}
	cmd := exec.CommandContext(ctx, bin, "-t1", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(int(d.Seconds()))+"s",
		"--latency", "-s", script, base, "--", file)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	r, err := parseWrk(string(out))
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r, err
}

var (
	wrkRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m)`)
	wrkRate     = regexp.MustCompile(`(?m)^Requests/sec:\s*([0-9.]+)`)
	wrkPct      = regexp.MustCompile(`(?m)^\s*(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s*(\d+)`)
	wrkSockErrs = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads wrk's report (with --latency).
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := wrkRequests.FindStringSubmatch(out)
	rate := wrkRate.FindStringSubmatch(out)
	if m == nil || rate == nil {
		return r, fmt.Errorf("wrk: unreadable report: %s", out)
	}
	r.requests, _ = strconv.Atoi(m[1])
	r.elapsed = duration(m[2], m[3])
	r.perSecond, _ = strconv.ParseFloat(rate[1], 64)
	for _, p := range wrkPct.FindAllStringSubmatch(out, -1) {
		if p[1] == "50" {
			r.p50 = duration(p[2], p[3])
		} else {
			r.p99 = duration(p[2], p[3])
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.non2xx, _ = strconv.Atoi(m[1])
	}
	if m := wrkSockErrs.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			r.sockErrs += n
		}
	}
	return r, nil
}

func duration(v, unit string) time.Duration {
	f, _ := strconv.ParseFloat(v, 64)
	scale := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute}[unit]
	return time.Duration(f * float64(scale))
}

// wrkRounds alternates wrk runs against Switchboard and the bare server, rounds times, each
// Switchboard run on callbacks it has never seen (a fresh replay file), and prints each
// round and the median ratio.
// With a prototype target, it is measured in each round too.
// It returns the median throughput of the bare server.
func wrkRounds(ctx context.Context, o options, token string, sb, bare, proto target, stdout io.Writer) (float64, error) {
	script, err := replayScript(o.wrkScript)
	if err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "callbackload-replay-")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.RemoveAll(dir) }() // temporary files; nothing depends on their removal
	var ratios, protoRatios, bares []float64
	var failed int
	for round := 1; round <= o.rounds; round++ {
		file := filepath.Join(dir, "callbacks.replay")
		if err := writeReplay(file, sb.base, newWorkload(o, token)); err != nil {
			return 0, err
		}
		signed, err := signOfficially(ctx, o.signer, script, token, sb.base, file)
		if err != nil {
			return 0, err
		}
		if round == 1 {
			_, _ = fmt.Fprintln(stdout, "replay:", signed) // progress on the terminal; a closed stdout must not stop the run
		}
		cpu := startCPU(sb.pid, sb.redisPID)
		s, err := runWrk(ctx, script, file, sb.base, o.conns, o.duration)
		if err != nil {
			return 0, err
		}
		sbCPU := cpu.lineFor(s.requests, false)
		cpu = startCPU(bare.pid, 0)
		b, err := runWrk(ctx, script, file, bare.base, o.conns, o.duration)
		if err != nil {
			return 0, err
		}
		ratio := s.perSecond / b.perSecond
		ratios = append(ratios, ratio)
		bares = append(bares, b.perSecond)
		failed += s.non2xx + s.sockErrs
		_, _ = fmt.Fprintf(stdout, "round %d (wrk -t1 -c%d):\n  %s\n  %s\n  %s\n  %s\n  ratio switchboard/bare: %.2f\n", // figures printed as they are measured; a closed stdout must not stop the run
			round, o.conns, s.line("switchboard"), sbCPU, b.line("bare echo 204"), cpu.lineFor(b.requests, false), ratio)
		if proto.base != "" {
			cpu = startCPU(proto.pid, proto.redisPID)
			p, err := runWrk(ctx, script, file, proto.base, o.conns, o.duration)
			if err != nil {
				return 0, err
			}
			protoRatios = append(protoRatios, p.perSecond/b.perSecond)
			_, _ = fmt.Fprintf(stdout, "  %s\n  %s\n  ratio prototype/bare: %.2f\n", // as above
				p.line("naive prototype (one HSET)"), cpu.lineFor(p.requests, false), p.perSecond/b.perSecond)
		}
	}
	if len(protoRatios) > 0 {
		slices.Sort(protoRatios)
		_, _ = fmt.Fprintf(stdout, "wrk ratio prototype/bare: median %.2f, min %.2f, max %.2f\n", // as above
			protoRatios[len(protoRatios)/2], protoRatios[0], protoRatios[len(protoRatios)-1])
	}
	slices.Sort(ratios)
	_, _ = fmt.Fprintf(stdout, "wrk ratio switchboard/bare over %d alternating rounds: median %.2f, min %.2f, max %.2f\n", // as above
		len(ratios), ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1])
	slices.Sort(bares)
	if failed > 0 {
		return 0, fmt.Errorf("%d callbacks were not acknowledged with 2xx under wrk", failed)
	}
	return bares[len(bares)/2], nil
}

// target is a server under load: its base URL and, when this command started it, its
// process (and its Redis's) for CPU figures.
type target struct {
	base          string
	pid, redisPID int
}
