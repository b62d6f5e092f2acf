#!/usr/bin/env bash
# IMAP read rate against Dovecot, the bar: the same N messages of SIZE bytes
# in one INBOX, read by the same Python client with one
# `FETCH 1:* (FLAGS BODY.PEEK[])` over TLS, from Dovecot (Debian's
# dovecot-imapd, a Maildir, started here with its own configuration) and
# from `hisp serve` (each message decrypted from the store as it is read).
# Then IDLE: SESSIONS sessions idle on one INBOX; one new message must reach
# all of them, and the resident size of `hisp serve` is read (the one user may
# hold that many sessions here: imap.max_sessions_per_user is raised for it).
#
# Usage: benchmarks/imap.sh [messages, default 1000] [bytes, default 10000] [idle sessions, default 100]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000}
size=${2:-10000}
sessions=${3:-100}
. benchmarks/common.sh
command -v dovecot >/dev/null || { echo "imap.sh needs dovecot (apt-get install dovecot-imapd)" >&2; exit 1; }
ip=127.0.0.23
user=reader@direct.imapbench.test
password=bench-password

# The messages, as files.
python3 - "$work/msgs" "$count" "$size" <<'PY'
import os, sys
d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(d)
body = ("Patient Jane Roe, referral. " * (size // 28 + 1))[:size]
lines = "\r\n".join(body[i:i + 76] for i in range(0, len(body), 76))
for k in range(n):
    with open(f"{d}/{k:06}.eml", "w", newline="") as f:
        f.write(f"From: sender@direct.partner.test\r\nTo: {'reader@direct.imapbench.test'}\r\nSubject: message {k}\r\nMessage-ID: <{k}@bench>\r\n\r\n{lines}\r\n")
PY

# TLS for both servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/tls.key" -out "$work/tls.pem" -days 2 \
  -subj "/CN=imap.bench.test" -addext "subjectAltName=DNS:imap.bench.test,IP:$ip" 2>/dev/null

# Dovecot: a Maildir holding the same files, one user with a static password.
mkdir -p "$work/dovecot/maildir/cur" "$work/dovecot/maildir/new" "$work/dovecot/maildir/tmp" "$work/dovecot/run"
k=0
for f in "$work"/msgs/*.eml; do cp "$f" "$work/dovecot/maildir/cur/$((1700000000 + k)).$k.bench:2,"; k=$((k + 1)); done
cat > "$work/dovecot/dovecot.conf" <<CONF
base_dir = $work/dovecot/run
state_dir = $work/dovecot/run
listen = $ip
protocols = imap
ssl = required
ssl_cert = <$work/tls.pem
ssl_key = <$work/tls.key
mail_location = maildir:$work/dovecot/maildir
first_valid_uid = 1
first_valid_gid = 1
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
log_path = $work/dovecot/log
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = $ip
    port = 2994
  }
}
passdb {
  driver = static
  args = password=$password uid=dovecot gid=dovecot home=$work/dovecot
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=$work/dovecot
}
CONF
# Dovecot runs its processes as its own users (never root): they read the Maildir as dovecot.
chmod 755 "$work"
chown -R dovecot:dovecot "$work/dovecot/maildir"
dovecot -c "$work/dovecot/dovecot.conf" -F >"$work/dovecot.out" 2>&1 &
pids+=($!)

# hisp: a store with the same messages in the reader's INBOX.
keys=(--data "$work/hisp" --key-file "$work/hisp.key")
$hisp init "${keys[@]}" >/dev/null
$hisp domain add direct.imapbench.test --ipv4 $ip "${keys[@]}" >/dev/null
echo "$password" > "$work/pw"
$hisp address add $user --password-file "$work/pw" "${keys[@]}" >/dev/null
$hisp message import --mailbox $user "$work"/msgs/*.eml "${keys[@]}" >/dev/null
cat > "$work/hisp.json" <<JSON
{ "hostname": "imap.bench.test", "inbound": {"listen": "$ip:2525"}, "submission": {"listen": "$ip:2587"},
  "imap": {"listen": "$ip:2143", "tls_listen": "$ip:2993", "max_sessions_per_user": $((sessions + 10))}, "dns": {"listen": "$ip:5353"},
  "tls": {"certificate": "$work/tls.pem", "key": "$work/tls.key"}, "resolver": {"servers": ["$ip:5353"]},
  "limits": {"max_connections": 1000, "max_connections_per_address": 1000}, "log": {"format": "json", "level": "warning"} }
JSON
$hisp serve --config "$work/hisp.json" "${keys[@]}" >"$work/hisp.log" 2>&1 &
hisp_pid=$!; pids+=($hisp_pid)
for i in $(seq 1 100); do grep -q "ready" "$work/hisp.log" && break; sleep 0.1; done
sleep 1

python3 - "$ip" "$user" "$password" "$work/tls.pem" "$count" "$sessions" "$hisp_pid" <<'PY'
import imaplib, platform, socket, ssl, sys, threading, time
ip, user, password, ca, count, sessions, pid = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
def read_all(port, login):
    c = imaplib.IMAP4_SSL(ip, port, ssl_context=ctx)
    c.login(login, password)
    typ, data = c.select("INBOX")
    assert int(data[0]) == count, (port, data)
    t = time.time()
    typ, data = c.fetch("1:*", "(FLAGS BODY.PEEK[])")
    elapsed = time.time() - t
    got = sum(1 for d in data if isinstance(d, tuple))
    assert got == count, (port, got)
    c.logout()
    return elapsed
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"): return int(line.split()[1]) // 1024
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"machine: {cpu}, {__import__('os').cpu_count()} cores")
rates = {}
for name, port, login in (("dovecot", 2994, user), ("hisp", 2993, user)):
    read_all(port, login)  # warm up
    runs = [read_all(port, login) for _ in range(3)]
    best = min(runs)
    rates[name] = count / best
    print(f"{name}: FETCH 1:* (FLAGS BODY.PEEK[]) of {count} messages: {best:.3f} s, {count / best:.0f} messages/s (best of 3)")
print(f"hisp / dovecot: {rates['hisp'] / rates['dovecot']:.2f} (goal: at least 0.5)")

# IDLE: `sessions` sessions on INBOX; a flag change made by another session must reach all.
idlers = []
for k in range(sessions):
    c = imaplib.IMAP4_SSL(ip, 2993, ssl_context=ctx)
    c.login(user, password)
    c.select("INBOX")
    tag = c._new_tag().decode()
    c.send(f"{tag} IDLE\r\n".encode())
    assert c.readline().startswith(b"+"), "no IDLE continuation"
    idlers.append(c)
print(f"{sessions} sessions in IDLE: hisp serve resident {rss()} MB")
heard = []
def wait(c):
    c.sock.settimeout(10)
    line = c.readline()
    heard.append((time.time(), line))
threads = [threading.Thread(target=wait, args=(c,)) for c in idlers]
for t in threads: t.start()
w = imaplib.IMAP4_SSL(ip, 2993, ssl_context=ctx)
w.login(user, password)
w.select("INBOX")
t0 = time.time()
w.store("1", "+FLAGS", "(\\Flagged)")
for t in threads: t.join()
late = max(t for t, _ in heard) - t0
ok = sum(1 for _, l in heard if b"FETCH" in l)
print(f"a change reached {ok} of {sessions} idle sessions, the last after {late:.3f} s (goal: all within 2 s); resident {rss()} MB (goal: under 256)")
PY
