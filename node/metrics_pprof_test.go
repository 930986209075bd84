package node

import (
	"net"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPprofOnlyOnLoopback: /metrics is served wherever the operator binds
// it, /debug/pprof/ only on a loopback address (it has no authentication).
func TestPprofOnlyOnLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr  string
		pprof bool
	}{
		{"127.0.0.1:0", true},
		{"0.0.0.0:0", false}, // every interface: reachable from outside
	} {
		m, err := startMetrics(tc.addr, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(m.addr())
		get := func(path string) int {
			resp, err := http.Get("http://127.0.0.1:" + port + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if got := get("/metrics"); got != http.StatusOK {
			t.Errorf("%s: /metrics status %d", tc.addr, got)
		}
		want := http.StatusNotFound
		if tc.pprof {
			want = http.StatusOK
		}
		if got := get("/debug/pprof/cmdline"); got != want {
			t.Errorf("%s: /debug/pprof/cmdline status %d, want %d", tc.addr, got, want)
		}
		if err := m.close(); err != nil {
			t.Fatal(err)
		}
	}
}
