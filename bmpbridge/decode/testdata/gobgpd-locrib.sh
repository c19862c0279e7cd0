#!/bin/sh
# Captures one gobgpd BMP session (Loc-RIB, ADD-PATH path IDs) in a
# throwaway namespace with tcpdump (pcap) and dumpcap (pcapng) at once.
set -e
ns=dcfix
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-.}
ip netns add $ns 2>/dev/null || true
ip -n $ns link set lo up
ip netns exec $ns tcpdump -i lo -U -s0 -w $out/gobgpd-locrib.pcap tcp port 11019 2>/dev/null & tp=$!
ip netns exec $ns dumpcap -q -i lo -f "tcp port 11019" -w $out/gobgpd-locrib.pcapng 2>/dev/null & dp=$!
sleep 2
ip netns exec $ns timeout 25 python3 "$here"/gobgpd-locrib-listen.py & lp=$!
sleep 1
ip netns exec $ns timeout 20 gobgpd -f "$here"/gobgpd-locrib.toml -t toml -p --api-hosts 127.0.0.1:50051 --pprof-disable >/dev/null 2>&1 &
sleep 4
g="ip netns exec $ns gobgp -u 127.0.0.1 -p 50051"
$g global rib add 10.200.2.0/25; sleep 2
$g global rib add 10.200.3.0/24; sleep 2
$g global rib -a ipv6 add 2001:db8:200::/48; sleep 2
$g global rib del 10.200.2.0/25; sleep 2
$g global rib -a ipv6 del 2001:db8:200::/48; sleep 2
wait $lp || true
sleep 1; kill $tp $dp; wait
ip netns del $ns
