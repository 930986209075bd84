#!/usr/bin/env bash
# Runs README.md's commands as a newcomer would, in a copy of the working
# tree (tracked and untracked, not ignored files), so a README edit that
# breaks them fails here:
#   - the "Running nodes by hand" block, line by line: each `rumor node` in
#     the background (waiting until it serves RPC), <peer id of n0> filled in
#     from n0's output, every other line in the foreground;
#   - the JSON-RPC section's rpc() curl helper with every example of its
#     method table, placeholders filled in from the run (a result, not an
#     error, is required).
# The README's ports (4141, 4142, 8545, 8546) are used when free; a taken
# one is replaced by a free one (and --rpc added where the README relies on
# the default 8545). Every process it starts is stopped on exit.
# About 30 s once the build cache is warm; the first build takes minutes.
# Not part of scripts/test.sh (it needs free local ports and a shell's curl).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
readme="$root/README.md"
tmp=$(mktemp -d)
src="$tmp/src"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	for f in "$tmp"/node-*.log; do [ -e "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
	exit 1
}

# port_free P: nothing accepts connections on 127.0.0.1:P.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# pick P: P if free, else the first free port above 20000.
pick() {
	local p=$1
	if port_free "$p"; then echo "$p"; return; fi
	p=20000
	while ! port_free "$p" || [[ " ${picked[*]:-} " == *" $p "* ]]; do p=$((p + 1)); done
	echo "$p"
}
picked=()
declare -A port
for p in 4141 4142 8545 8546; do port[$p]=$(pick "$p"); picked+=("${port[$p]}"); done

# subst CMD: the README's ports replaced by the chosen ones.
subst() {
	local c=$1 p
	for p in 4141 4142 8545 8546; do c=${c//127.0.0.1:$p/127.0.0.1:${port[$p]}}; c=${c//tcp\/$p/tcp\/${port[$p]}}; done
	if [[ ${port[8545]} != 8545 && $c =~ rumor\ (rpc|tx) && $c != *--rpc* ]]; then
		c+=" --rpc 127.0.0.1:${port[8545]}"
	fi
	printf '%s' "$c"
}

# sh_block HEADING: the first ```sh block after "## HEADING", continuation
# lines joined, comments and blank lines dropped.
sh_block() {
	awk -v h="## $1" '$0 == h {f = 1; next} f && /^## / {exit} f && /^```sh/ {b = 1; next} b && /^```/ {exit} b' "$readme" |
		sed -e ':a' -e '/\\$/{N;s/\\\n[[:space:]]*//;ba}' | grep -v '^[[:space:]]*#' | grep -v '^[[:space:]]*$' || true
}

mkdir -p "$src"
(cd "$root" && git ls-files -z -co --exclude-standard |
	while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf -) | tar -xf - -C "$src"
cd "$src"

mapfile -t cmds < <(sh_block "Running nodes by hand")
[ "${#cmds[@]}" -ge 5 ] || fail "no command block under '## Running nodes by hand'"

n=0 peer0="" txout=""
for c in "${cmds[@]}"; do
	c=$(subst "$c")
	if [[ $c == *"<peer id of n0>"* ]]; then
		[ -n "$peer0" ] || fail "no peer id of n0 for: $c"
		c=${c//<peer id of n0>/$peer0}
	fi
	[[ $c != *"<"*">"* ]] || fail "unfilled placeholder in: $c"
	echo "\$ $c"
	if [[ $c == *"rumor node "* ]]; then
		log="$tmp/node-$n.log"
		bash -c "exec $c" >"$log" 2>&1 &
		pids+=($!)
		for _ in $(seq 300); do
			grep -q '^rpc: http' "$log" && break
			kill -0 "${pids[-1]}" 2>/dev/null || fail "node exited: $c"
			sleep 0.1
		done
		grep -q '^rpc: http' "$log" || fail "node not serving RPC after 30 s: $c"
		grep '^peer id\|^listening' "$log"
		if [ "$n" = 0 ]; then peer0=$(sed -n 's/^peer id: //p' "$log"); fi
		n=$((n + 1))
	else
		out=$(timeout 120 bash -c "$c" 2>&1) || fail "exit $?: $c"$'\n'"$out"
		echo "$out"
		[[ $c == *"tx send"* ]] && txout=$out
	fi
done
[ "$n" -ge 2 ] || fail "expected two nodes in the block"
txid=$(head -1 <<<"$txout")
blockid=$(sed -n 's/^included in block \([0-9a-f]*\) .*/\1/p' <<<"$txout")
[[ $txid =~ ^[0-9a-f]{64}$ && $blockid =~ ^[0-9a-f]{64}$ ]] || fail "tx send --wait printed no tx id and block: $txout"

# The rpc() helper and the method table of the JSON-RPC section.
helper=$(sh_block "JSON-RPC")
[[ $helper == rpc\(\)* ]] || fail "no rpc() helper in the JSON-RPC section"
helper=$(subst "$helper")
raw=$(./rumor rpc tx_get "$txid" --rpc "127.0.0.1:${port[8545]}" | sed -n 's/^  "raw": "\(.*\)".*/\1/p')
addr=$(./rumor keys show ./net/keys/account-1.json)
mapfile -t examples < <(awk '/^## JSON-RPC/ {f = 1; next} f && /^## / {exit} f' "$readme" |
	sed -n 's/^| `[a-zA-Z_]*` | `\(rpc [^`]*\)` |.*/\1/p')
[ "${#examples[@]}" -ge 10 ] || fail "method table: ${#examples[@]} examples found"
for e in "${examples[@]}"; do
	e=${e//<signed tx hex>/$raw}
	e=${e//<tx id>/$txid}
	e=${e//<block id>/$blockid}
	e=${e//<address>/$addr}
	e=${e//<id>/$txid}
	[[ $e != *"<"*">"* ]] || fail "unfilled placeholder in: $e"
	out=$(bash -c "$helper"$'\n'"$e")
	[[ $out == *'"result":'* ]] || fail "$e"$'\n'"$out"
	printf '%-40.40s ok\n' "${e:0:40}"
done
echo "README commands: all passed"
