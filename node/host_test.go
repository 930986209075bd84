package node

import (
	"testing"

	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

func TestResourceLimitsClearHighWater(t *testing.T) {
	for _, tc := range []struct {
		mem  int64
		high int
	}{{DefaultResourceMemory, DefaultConnHighWater}, {64 << 20, 400}, {8 << 30, 64}} {
		cfg := Config{ResourceMemory: tc.mem, ConnHighWater: tc.high}
		sys := resourceLimits(&cfg).ToPartialLimitConfig().System
		floor := rcmgr.LimitVal(inboundHeadroom * tc.high)
		if sys.ConnsInbound < floor || sys.Conns < floor {
			t.Errorf("memory %d, high %d: system conns %v inbound %v below %v", tc.mem, tc.high, sys.Conns, sys.ConnsInbound, floor)
		}
		if sys.Memory <= 0 || sys.Streams <= 0 {
			t.Errorf("memory %d: system limits not scaled: %+v", tc.mem, sys)
		}
	}
}
