#!/bin/bash
# The two-guest test bed itself: each guest has its address on the pair's own
# link and reaches the other there (and only there: no default route), and the
# rendezvous passes a value from one guest to the other and back.
# pair: server client
# timeout: 240
# manual: the test bed itself; nvmeof-apply, in --all, runs on the same two-guest link
. "$(dirname "$0")/lib.sh"

expect_eq "hostname is the role" "$(role)" "$(hostname)"
expect_eq "address on the pair link" "$CACHECTL_VM_ADDR/24" "$(ip -o -4 addr show dev "$CACHECTL_VM_NIC" | awk '{print $4}')"
expect_eq "no default route (nothing leaves the link)" "" "$(ip route show default)"
expect_cmd "ping the peer ($CACHECTL_VM_PEER_ADDR)" busybox ping -c 2 -W 5 "$CACHECTL_VM_PEER_ADDR"
if [[ $(role) == server ]]; then
  pair_signal hello "from-server-$$"
  expect_match "client's answer" '^from-server-[0-9]+/client$' "$(pair_wait answer 120)"
else
  v=$(pair_wait hello 120)
  pair_signal answer "$v/client"
fi
finish
