#!/usr/bin/env bash
# End-to-end Direct messages per second: N messages submitted to HISP A
# (STARTTLS + AUTH, Python's smtplib, several connections) for mailboxes on
# HISP B, each discovered, signed, encrypted, delivered, decrypted, verified,
# stored, and answered with a processed MDN that A decrypts, verifies and
# matches. Two `hisp serve` processes (release build) on loopback, found
# through each other's DNS servers, as in the gateway tests.
#
# The physical limit, measured in the same run: four RSA-2048 private-key
# operations per message (A signs, B decrypts, B signs the MDN, A decrypts it)
# at the raw rate of `hisp bench smime` on one core, times the cores.
#
# Usage: benchmarks/gateway-throughput.sh [messages, default 400] [body bytes, default 10000] [connections, default 4]
# Options (environment): THREADS=1 CPU per thread and context switches per message, PROFILE=FILE perf profile, WAL=1 pages written per table, TRACE=1, KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-400}
size=${2:-10000}
connections=${3:-4}

. benchmarks/common.sh

ipA=127.0.0.20; ipB=127.0.0.21
dA=direct.bench-a.test; dB=direct.bench-b.test
store() { echo --data "$work/$1" --key-file "$work/$1.key"; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/tlsca.key" -out "$work/tlsca.pem" -days 2 \
  -subj "/CN=bench TLS CA" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
for side in a b; do
  if [ $side = a ]; then ip=$ipA; domain=$dA; peerip=$ipB; peer=$dB; else ip=$ipB; domain=$dB; peerip=$ipA; peer=$dA; fi
  $hisp init $(store $side) >/dev/null
  $hisp domain add $domain --ipv4 $ip $(store $side) >/dev/null
  echo "bench-password-$side" > "$work/$side.pw"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/$side-tls.key" -out "$work/$side-tls.csr" -subj "/CN=hisp.$domain" 2>/dev/null
  printf "subjectAltName=DNS:hisp.%s\nextendedKeyUsage=serverAuth\n" $domain > "$work/$side.ext"
  openssl x509 -req -in "$work/$side-tls.csr" -CA "$work/tlsca.pem" -CAkey "$work/tlsca.key" -CAcreateserial -days 2 \
    -out "$work/$side-tls.pem" -extfile "$work/$side.ext" 2>/dev/null
  cat > "$work/$side.json" <<JSON
{ "hostname": "hisp.$domain",
  "inbound": {"listen": "$ip:2525"}, "submission": {"listen": "$ip:2587"}, "dns": {"listen": "$ip:5353", "rate_limit": 0},
  "tls": {"certificate": "$work/$side-tls.pem", "key": "$work/$side-tls.key"},
  "resolver": {"servers": ["$ip:5353"], "zones": {"$peer": ["$peerip:5353"]}},
  "delivery": {"mx_port": 2525, "tls_verify": "full", "trust_roots": "$work/tlsca.pem"},
  "limits": {"max_connections": 200},
  "log": {"format": "json", "level": "warning"} }
JSON
done
$hisp address add alice@$dA --password-file "$work/a.pw" $(store a) >/dev/null
for i in 1 2 3 4; do $hisp address add bob$i@$dB $(store b) >/dev/null; done
$hisp cert export $dA --ca --out "$work/a-ca.pem" $(store a) >/dev/null
$hisp cert export $dB --ca --out "$work/b-ca.pem" $(store b) >/dev/null
$hisp anchor add "$work/b-ca.pem" --domain $dA $(store a) >/dev/null
$hisp anchor add "$work/a-ca.pem" --domain $dB $(store b) >/dev/null

$hisp serve --config "$work/a.json" $(store a) >"$work/a.log" 2>&1 &
pidA=$!; pids+=($pidA)
$hisp serve --config "$work/b.json" $(store b) >"$work/b.log" 2>&1 &
pidB=$!; pids+=($pidB)
for i in $(seq 1 100); do grep -q "ready" "$work/a.log" && grep -q "ready" "$work/b.log" && break; sleep 0.1; done

# The raw RSA-2048 private-key rate on one core, in this run, before and after.
rsa() { $hisp bench smime --size 1000 --seconds 1 --rounds 3 | sed -n 's/^raw RSA-2048 private-key operations: \([0-9.]*\)\/s/\1/p'; }
rsa_before=$(rsa)

cat > "$work/push.py" <<'PY'
import smtplib, ssl, sys, threading, time
host, user, password, domain, count, size, connections, store = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
body = ("Patient Jane Roe, referral. " * (size // 28 + 1))[:size]
lines = "\r\n".join(body[i:i + 76] for i in range(0, len(body), 76))
# The sessions are opened and authenticated before the clock starts: the
# first AUTH of an address costs a full scrypt (tens of milliseconds, once
# per address per process), which would otherwise land in the first second.
ready = threading.Barrier(connections + 1)
go = threading.Event()
def worker(k):
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    s = smtplib.SMTP(host, 2587, timeout=120); s.starttls(context=ctx); s.login(user, password)
    ready.wait(); go.wait()
    for n in range(k, count, connections):
        to = f"bob{n % 4 + 1}@{domain}"
        msg = f"From: {user}\r\nTo: {to}\r\nSubject: bench {n}\r\nMessage-ID: <bench-{n}@bench>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n{lines}\r\n"
        s.sendmail(user, [to], msg.encode())
    s.quit()
threads = [threading.Thread(target=worker, args=(k,)) for k in range(connections)]
for t in threads: t.start()
ready.wait()
import resource
def used():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime
print("ready", flush=True)
sys.stdin.readline()
cpu0 = used()
start = time.time()
go.set()
for t in threads: t.join()
submitted, cpu = time.time() - start, used() - cpu0
# Done when A's queue has nothing in progress (every message processed, i.e. its MDN arrived),
# as `hisp queue list --active` tells it, read here from the queue's clear state column through
# a read-only connection every 10 ms: a `hisp queue list` or a sqlite3 process per poll costs
# milliseconds of CPU each, taken from the HISPs while the last messages flow.
import sqlite3
db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=2)
active = "SELECT count(*) FROM queue WHERE state IN ('pending', 'queued', 'sent') OR (state = 'processed' AND deadline IS NOT NULL)"
# A run whose queue stops moving for 60 s (a message waiting for an MDN that will not come
# before its one-hour deadline) ends with an error instead of waiting out the deadline.
left, moved = None, time.time()
while (n := db.execute(active).fetchone()[0]) != 0:
    if n != left: left, moved = n, time.time()
    if time.time() - moved > 60:
        print(f"stalled: {n} message(s) still in progress on HISP A after 60 s without progress (see hisp queue list --active)", file=sys.stderr, flush=True)
        sys.exit(1)
    time.sleep(0.01)
print(f"{submitted:.3f} {cpu:.2f} {time.time():.3f}", flush=True)
PY

# CPU seconds (user + system) a process has used so far.
cpu() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' /proc/$1/stat; }
coproc PUSH { python3 "$work/push.py" $ipA alice@$dA bench-password-a $dB $count $size $connections "$work/a/hisp.sqlite"; }
pids+=($PUSH_PID)
read -r line <&"${PUSH[0]}"
[ "$line" = ready ] || { echo "the submitting client did not get ready: $line" >&2; exit 1; }
cpuA0=$(cpu $pidA); cpuB0=$(cpu $pidB)
# Context switches of a process's threads so far (each a thread that slept and was woken, or was preempted).
switches() { cat /proc/$1/task/*/status 2>/dev/null | awk '/ctxt_switches/ {n += $2} END {print n}'; }
swA0=$(switches $pidA); swB0=$(switches $pidB)
# PROFILE=file: a perf profile (with call graphs) of both HISPs while the messages flow.
if [ -n "${PROFILE:-}" ]; then perf record -F 999 --call-graph dwarf,16384 -p "$pidA,$pidB" -o "$PROFILE" >/dev/null 2>&1 & pids+=($!); fi
start=$(date +%s.%N)
echo go >&"${PUSH[1]}"
read -r submit_seconds cpuClient end <&"${PUSH[0]}" || { echo "the run did not finish (the client's message above says why); KEEP=1 keeps the HISPs' logs and stores for a look" >&2; exit 1; }
if [ -n "${PROFILE:-}" ]; then kill -INT "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; fi
# THREADS=1: context switches per message, and CPU seconds per thread of each HISP (is one thread the bottleneck?).
if [ -n "${THREADS:-}" ]; then
  echo "context switches per message: HISP A $(( ($(switches $pidA) - swA0) / count )), HISP B $(( ($(switches $pidB) - swB0) / count ))"
  for p in $pidA $pidB; do
    echo "threads of $([ $p = $pidA ] && echo A || echo B):"
    for t in /proc/$p/task/*; do
      awk -v t="$(getconf CLK_TCK)" -v n="$(cat $t/comm)" '{printf "  %-18s %6.2f s\n", n, ($14 + $15) / t}' $t/stat
    done | sort -k2 -n -r | sed -n 1,8p
  done
fi
# WAL=1: which table or index owns each page in each HISP's write-ahead log (the commits since
# its last checkpoint): SQLite's dbstat table names the owner of every page of a copy of the store.
if [ -n "${WAL:-}" ]; then
  for side in a b; do
    cp "$work/$side/hisp.sqlite" "$work/wal-$side.sqlite"; cp "$work/$side/hisp.sqlite-wal" "$work/wal-$side.sqlite-wal"
    python3 - "$work/wal-$side.sqlite" "$side" <<'PY'
import collections, sqlite3, struct, sys
path, side = sys.argv[1], sys.argv[2]
wal = open(path + "-wal", "rb").read()
size = struct.unpack(">I", wal[8:12])[0]
pages, commits, at = [], 0, 32
while at + 24 + size <= len(wal):
    page, commit = struct.unpack(">II", wal[at:at + 8])
    pages.append(page); commits += commit != 0; at += 24 + size
owner = {p: n for n, p in sqlite3.connect(path).execute("SELECT name, pageno FROM dbstat")}
print(f"WAL of {side.upper()}: {len(pages)} frames in {commits} commits ({len(pages) / max(commits, 1):.1f} per commit)")
for name, n in collections.Counter(owner.get(p, "(freed)") for p in pages).most_common(10):
    print(f"  {100 * n / len(pages):5.1f}%  {name}")
PY
  done
fi
cpuA=$(awk -v a="$(cpu $pidA)" -v b="$cpuA0" 'BEGIN {print a - b}'); cpuB=$(awk -v a="$(cpu $pidB)" -v b="$cpuB0" 'BEGIN {print a - b}')
if [ -n "${TRACE:-}" ]; then for n in 0 100 199; do $hisp message trace "<bench-$n@bench>" $(store a); $hisp message trace "<bench-$n@bench>" $(store b); done; fi
rsa_after=$(rsa)
processed=$($hisp queue list --limit 100000 $(store a) | grep -c " processed " || true)
failed=$($hisp queue list --limit 100000 $(store a) | grep -c -E " failed | timedout " || true)
hwmA=$(grep VmHWM /proc/$pidA/status | awk '{print $2}')
hwmB=$(grep VmHWM /proc/$pidB/status | awk '{print $2}')
cores=$(nproc)

python3 - "$count" "$size" "$connections" "$start" "$end" "$submit_seconds" "$rsa_before" "$rsa_after" "$processed" "$failed" "$hwmA" "$hwmB" "$cores" "$cpuA" "$cpuB" "$cpuClient" <<'PY'
import sys, platform
count, size, conns = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
start, end, submit = float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
rsa = (float(sys.argv[7]) + float(sys.argv[8])) / 2
processed, failed, hwmA, hwmB, cores = int(sys.argv[9]), int(sys.argv[10]), int(sys.argv[11]), int(sys.argv[12]), int(sys.argv[13])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
rate = count / (end - start)
limit = rsa * cores / 4
print(f"machine: {cpu}, {cores} cores (client, both HISPs and the bench share them)")
print(f"messages: {count} of {size} body bytes, {conns} submission connections (opened and authenticated before the clock starts); processed {processed}, failed {failed}")
print(f"submission accepted all in {submit:.2f} s ({count / submit:.1f} msg/s)")
print(f"end to end with processed MDNs: {end - start:.2f} s, {rate:.1f} msg/s")
print(f"raw RSA-2048 private-key operations: {rsa:.1f}/s per core (mean of before {float(sys.argv[7]):.1f} and after {float(sys.argv[8]):.1f})")
print(f"limit: 4 private-key operations per message on {cores} cores = {limit:.1f} msg/s; measured = {100 * rate / limit:.0f}% of it")
print(f"memory peak (VmHWM): HISP A {hwmA / 1024:.0f} MiB, HISP B {hwmB / 1024:.0f} MiB")
cpuA, cpuB = float(sys.argv[14]), float(sys.argv[15])
print(f"CPU per message: HISP A {1000 * cpuA / count:.2f} ms, HISP B {1000 * cpuB / count:.2f} ms "
      f"(two private-key operations each: {2000 / rsa:.2f} ms); {100 * (cpuA + cpuB) / (cores * (end - start)):.0f}% of the cores busy with the HISPs")
print(f"the submitting client (Python, TLS) used {float(sys.argv[16]):.2f} s of CPU, {100 * float(sys.argv[16]) / (cores * (end - start)):.0f}% of the cores")
PY
