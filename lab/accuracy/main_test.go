//go:build linux

package accuracy

import (
	"os"
	"testing"

	"github.com/abing-net/abing/lab/testbed"
)

func TestMain(m *testing.M) {
	testbed.RunChild()
	os.Exit(m.Run())
}
