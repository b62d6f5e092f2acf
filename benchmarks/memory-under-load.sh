#!/usr/bin/env bash
# Memory of `hisp serve` (release build) when N sessions (default 200) each
# send a Direct message of the largest size at once to its MX: the peak
# resident size, how many messages were stored and how many deferred with a
# 4xx, and the resident size some seconds after the burst (memory given back).
# The message is real: signed by a sender whose CA the receiver trusts and
# encrypted to the recipient, made by OpenSSL for this run.
#
# Usage: benchmarks/memory-under-load.sh [sessions, default 200] [max_message_bytes, default 33554432]
set -euo pipefail
cd "$(dirname "$0")/.."
sessions=${1:-200}
max=${2:-33554432}

. benchmarks/common.sh

ip=127.0.0.22
dA=direct.mem-a.test; dB=direct.mem-b.test
store() { echo --data "$work/$1" --key-file "$work/$1.key"; }
for side in a b; do
  domain=$([ $side = a ] && echo $dA || echo $dB)
  $hisp init $(store $side) >/dev/null
  $hisp domain add $domain --ipv4 $ip $(store $side) >/dev/null
done
$hisp address add alice@$dA $(store a) >/dev/null
$hisp address add bob@$dB $(store b) >/dev/null
$hisp cert export $dA --ca --out "$work/a-ca.pem" $(store a) >/dev/null
$hisp anchor add "$work/a-ca.pem" --domain $dB $(store b) >/dev/null
echo "memory-bench-p12" > "$work/p12.pw"
$hisp cert export alice@$dA --pkcs12 "$work/alice.p12" --password-file "$work/p12.pw" $(store a) >/dev/null
openssl pkcs12 -in "$work/alice.p12" -nodes -passin file:"$work/p12.pw" -out "$work/alice.pem" 2>/dev/null
$hisp cert export bob@$dB --out "$work/bob.pem" $(store b) >/dev/null

# The inner message at 70% of the limit: signed, encrypted and base64-encoded it is just under it.
python3 - "$work/inner.eml" "$max" alice@$dA bob@$dB <<'PY'
import sys
path, limit, sender, rcpt = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
line = "Referral note, patient history and results. " * 1 + "\r\n"
body = line * (limit * 70 // 100 // len(line))
open(path, "w", newline="").write(f"From: {sender}\r\nTo: {rcpt}\r\nSubject: large\r\nMessage-ID: <large@bench>\r\n\r\n{body}")
PY
openssl smime -sign -in "$work/inner.eml" -signer "$work/alice.pem" -md sha256 -out "$work/signed.eml"
openssl smime -encrypt -aes256 -in "$work/signed.eml" -out "$work/enc.eml" "$work/bob.pem"
{ printf "From: alice@%s\r\nTo: bob@%s\r\nSubject: large\r\n" $dA $dB; sed 's/\r$//; s/$/\r/' "$work/enc.eml"; } > "$work/message.eml"
size=$(stat -c %s "$work/message.eml")

cat > "$work/b.json" <<JSON
{ "hostname": "hisp.$dB", "inbound": {"listen": "$ip:2525", "require_tls": false}, "submission": {"listen": "$ip:2587"},
  "dns": {"listen": "$ip:5353", "rate_limit": 0}, "resolver": {"servers": ["$ip:5353"], "timeout_seconds": 1},
  "limits": {"max_message_bytes": $max, "max_connections": $((sessions + 10)), "max_connections_per_address": $((sessions + 10))},
  "log": {"format": "json", "level": "warning"} }
JSON
$hisp serve --config "$work/b.json" $(store b) >"$work/b.log" 2>&1 &
pid=$!; pids+=($pid)
for i in $(seq 1 100); do grep -q "ready" "$work/b.log" && break; sleep 0.1; done
rss() { awk -v k="$1:" '$1 == k {print int($2 / 1024)}' /proc/$pid/status; }
idle=$(rss VmRSS)
start=$(date +%s.%N)
python3 Tests/Support/attack.py flood $ip 2525 alice@$dA bob@$dB "$work/message.eml" "$sessions" > "$work/results.json"
end=$(date +%s.%N)
after_burst=$(rss VmRSS)
sleep 5
settled=$(rss VmRSS)
python3 - "$work/results.json" <<PY
import json, sys
r = json.load(open(sys.argv[1]))
stored = sum(x.startswith("250 ") for x in r); deferred = sum(x[:1] == "4" for x in r)
print(f"machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)")
print(f"{len(r)} sessions x $size bytes (limit $max) at once: {stored} stored, {deferred} deferred with 4xx, {len(r) - stored - deferred} other")
print(f"time {float('$end') - float('$start'):.1f} s; resident: idle ${idle} MiB, peak $(rss VmHWM) MiB, right after ${after_burst} MiB, 5 s later ${settled} MiB")
others = [x for x in r if not x.startswith("250 ") and x[:1] != "4"]
if others: print("others:", others[:3])
PY
