package rpc

import (
	"encoding/json"
	"testing"
)

// genericHexParam is what tx_send read before the fast path: the params
// decoded as a JSON array of exactly one string.
func genericHexParam(params string) (string, bool) {
	var v []string
	if json.Unmarshal([]byte(params), &v) != nil || len(v) != 1 {
		return "", false
	}
	return v[0], true
}

var hexParamCases = []string{
	`["0xab01"]`, `["AB01"]`, `[""]`, " [ \"0x00ff\" ]\n", "\t[\r\"ab\"\n]\t",
	`["ab","cd"]`, `["ab",]`, `["ab"]]`, `[["ab"]]`, `{"tx":"ab"}`, `"ab"`, `null`, `[]`,
	`["a\u0062"]`, `["a\"b"]`, `["ab`, `[ab]`, `["ab"`, `["0xzz"]`, `["a b"]`, ``, `[`, `["ab" x]`,
}

// TestOneHexParamAgreesWithJSON: wherever the fast path reads a tx_send
// param, it reads what encoding/json reads; where it declines, the caller
// decodes in full.
func TestOneHexParamAgreesWithJSON(t *testing.T) {
	fast := 0
	for _, p := range hexParamCases {
		checkHexParam(t, p)
		if _, ok := oneHexParam(p); ok {
			fast++
		}
	}
	if fast != 5 {
		t.Errorf("the fast path read %d of the cases, want the 5 plain ones", fast)
	}
}

func checkHexParam(t *testing.T, params string) {
	t.Helper()
	h, ok := oneHexParam(params)
	if !ok {
		return
	}
	want, wok := genericHexParam(params)
	if !wok || h != want {
		t.Fatalf("params %q: fast path read %q, encoding/json %q (valid %v)", params, h, want, wok)
	}
}

// FuzzOneHexParam: go test -fuzz FuzzOneHexParam ./node/rpc
func FuzzOneHexParam(f *testing.F) {
	for _, p := range hexParamCases {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, params string) { checkHexParam(t, params) })
}
