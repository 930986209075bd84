package chain

import (
	"encoding/json"
	"testing"
)

func TestHashText(t *testing.T) {
	h := sampleTxs()[0].ID()
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back Hash
	if err := json.Unmarshal(b, &back); err != nil || back != h {
		t.Fatalf("json round trip: %v", err)
	}
	if _, err := ParseHash("0x" + h.String()); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "zz", h.String()[:63], h.String() + "00", "0x" + h.String()[:62] + "zz"} {
		if _, err := ParseHash(bad); err == nil {
			t.Fatalf("ParseHash(%q) succeeded", bad)
		}
		var a Address
		if err := a.UnmarshalText([]byte(bad)); err == nil {
			t.Fatalf("address %q accepted", bad)
		}
	}
	if len(h.Short()) != 8 || h.IsZero() || !(Hash{}).IsZero() {
		t.Fatal("Short/IsZero")
	}
}
