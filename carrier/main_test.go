package carrier

import (
	"os"
	"testing"

	"github.com/switchboard/switchboard/store/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }
