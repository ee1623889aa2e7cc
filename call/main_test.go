package call

import (
	"flag"
	"os"
	"testing"
)

// TestMain raises rapid's default from 100 to 1,000 random cases per property, unless the
// command line asks for a number (-rapid.checks=N).
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set {
		flag.Set("rapid.checks", "1000")
	}
	os.Exit(m.Run())
}
