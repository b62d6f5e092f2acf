#!/usr/bin/env bash
# CERT queries per second: `hisp dns serve` against NSD serving the same zone
# (exported by `hisp dns zone`), on the same machine in the same run, with
# dnsperf (UDP, EDNS0, so ~1 KB answers fit). Prints both rates and the ratio.
# Usage: benchmarks/dns-cert-qps.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}

for tool in dnsperf nsd; do
  command -v "$tool" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsperf nsd; break; }
done
. benchmarks/common.sh

domain=bench.example.test
keys=(--data "$work/data" --key-file "$work/master.key")
"$hisp" init "${keys[@]}" >/dev/null
"$hisp" domain add "$domain" --ipv4 127.0.0.1 "${keys[@]}" >/dev/null
for i in $(seq 1 20); do "$hisp" address add "user$i@$domain" "${keys[@]}" >/dev/null; done
"$hisp" dns zone "$domain" --out "$work/zone.txt" "${keys[@]}" >/dev/null
for i in $(seq 1 20); do echo "user$i.$domain CERT"; done > "$work/queries"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ours=$(port); theirs=$(port)

"$hisp" dns serve --listen "127.0.0.1:$ours" --rate-limit 0 "${keys[@]}" >"$work/hisp.log" 2>&1 &
pids+=($!)
mkdir -p "$work/nsd"
cat >"$work/nsd/nsd.conf" <<CONF
server:
    ip-address: 127.0.0.1
    port: $theirs
    username: ""
    chroot: ""
    zonesdir: "$work"
    pidfile: "$work/nsd/nsd.pid"
    zonelistfile: "$work/nsd/zone.list"
    database: ""
    xfrdfile: "$work/nsd/xfrd.state"
    xfrdir: "$work/nsd"
    verbosity: 0
    # Response-rate limiting off, as for ours (--rate-limit 0): this measures answering, not limiting.
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: $domain
    zonefile: "$work/zone.txt"
CONF
nsd -d -c "$work/nsd/nsd.conf" >"$work/nsd.log" 2>&1 &
pids+=($!)
sleep 2

rate() {
  dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries" -l "$duration" -e -c 4 -q 200 >"$work/perf-$1.txt" 2>&1 || true
  grep -E "Queries (completed|lost)" "$work/perf-$1.txt" | sed "s/^ */  port $1: /" >&2
  awk '/Queries per second/ {print $4}' "$work/perf-$1.txt"
}
# Warm both, then measure each.
dnsperf -s 127.0.0.1 -p "$ours" -d "$work/queries" -l 1 -e >/dev/null 2>&1 || true
dnsperf -s 127.0.0.1 -p "$theirs" -d "$work/queries" -l 1 -e >/dev/null 2>&1 || true
q_ours=$(rate "$ours")
q_nsd=$(rate "$theirs")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
echo "machine: $cpu, $(nproc) cores"
echo "hisp dns serve: $q_ours CERT queries/s"
echo "NSD $(nsd -v 2>&1 | head -1 | awk '{print $3}'): $q_nsd CERT queries/s"
python3 -c "print(f'ratio (ours / NSD): {float(\"$q_ours\") / float(\"$q_nsd\"):.2f}')"
