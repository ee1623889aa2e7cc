// Package machine describes the machine a drill ran on, for its report: measured numbers name
// the machine, and how busy it was besides the drill.
package machine

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// Describe says where the drill ran: CPUs, memory, OS, Go and redis-server versions.
func Describe() string {
	var parts []string
	cpu := fmt.Sprintf("%d vCPU", runtime.NumCPU())
	if m := procField("/proc/cpuinfo", "model name"); m != "" {
		cpu += " (" + m + ")"
	}
	parts = append(parts, cpu)
	if kb, _, ok := strings.Cut(procField("/proc/meminfo", "MemTotal"), " "); ok {
		if n, err := strconv.ParseInt(kb, 10, 64); err == nil && n > 0 {
			parts = append(parts, fmt.Sprintf("%d GiB", (n+1<<19)>>20))
		}
	}
	if name := osName(); name != "" {
		parts = append(parts, name)
	}
	parts = append(parts, runtime.Version())
	if out, err := exec.Command("redis-server", "--version").Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) >= 3 {
			parts = append(parts, "redis-server "+strings.TrimPrefix(f[2], "v="))
		}
	}
	return strings.Join(parts, ", ")
}

// procField is the value of the first "key : value" line of a /proc file with that key.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }() // read only
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}

// LoadAvg is the 1-minute load average: how busy the machine was besides the drill.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}
