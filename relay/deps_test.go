package relay

import (
	"go/build"
	"path"
	"strings"
	"testing"
)

const module = "github.com/rumor-relay/rumor"

// TestEmbeddable enforces the layering that lets another chain embed the
// relay: nothing under relay/ depends on rumor's own chain (chain/...),
// mempool, peers or node, and only the p2p transport depends on libp2p. It
// follows every import inside the module from each relay package (test
// files excluded: tests may use anything).
func TestEmbeddable(t *testing.T) {
	forbidden := []string{module + "/chain", module + "/mempool", module + "/peers", module + "/node", module + "/testnet", module + "/cmd"}
	roots := []string{"relay", "relay/wire", "relay/syncer", "relay/transport", "relay/memnet", "relay/relaytest", "relay/p2p"}
	for _, root := range roots {
		seen := map[string]bool{}
		var walk func(pkg string, via []string)
		walk = func(pkg string, via []string) {
			if seen[pkg] {
				return
			}
			seen[pkg] = true
			for _, f := range forbidden {
				if pkg == f || strings.HasPrefix(pkg, f+"/") {
					t.Errorf("%s imports %s (via %v)", root, pkg, via)
				}
			}
			// The test runs in relay/, one below the module root.
			bp, err := build.ImportDir(path.Join("..", strings.TrimPrefix(pkg, module+"/")), 0)
			if err != nil {
				t.Fatalf("%s: %v", pkg, err)
			}
			for _, imp := range bp.Imports {
				if strings.HasPrefix(imp, "github.com/libp2p/") && root != "relay/p2p" && !strings.HasPrefix(pkg, module+"/relay/p2p") {
					t.Errorf("%s depends on libp2p through %s (%s); only relay/p2p may", root, pkg, imp)
				}
				if strings.HasPrefix(imp, module+"/") {
					walk(imp, append(via, pkg))
				}
			}
		}
		walk(module+"/"+root, nil)
	}
}
