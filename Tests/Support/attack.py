#!/usr/bin/env python3
"""Attacks on a running `hisp serve`, each printing one JSON line of what it saw.

  attack.py guess HOST PORT USER WRONG RIGHT N
      N wrong passwords for USER (a new connection each), then the right one;
      prints the reply to each AUTH.
  attack.py flood HOST PORT FROM TO FILE N
      N sessions at once to an MX without TLS, each sending FILE as its message;
      each session sends all its data before reading the end-of-data reply.
      Prints the final reply code of each session.
  attack.py trickle HOST PORT N SECONDS
      N connections that each send one byte of "NOOP" every 0.3 s, never a line
      end, for at most SECONDS; prints, per connection, after how many seconds
      the server closed it (null: still open) and what it said.
"""
import asyncio
import json
import smtplib
import ssl
import sys


def guess(host, port, user, wrong, right, n):
    replies = []
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    for i in range(n + 1):
        password = right if i == n else wrong
        s = smtplib.SMTP(host, port, timeout=60)
        s.ehlo("guesser")
        s.starttls(context=context)
        s.ehlo("guesser")
        try:
            code, text = s.login(user, password)
            replies.append(f"{code} {text.decode(errors='replace')}")
        except smtplib.SMTPAuthenticationError as e:
            replies.append(f"{e.smtp_code} {e.smtp_error.decode(errors='replace')}")
        try:
            s.quit()
        except Exception:
            pass
    print(json.dumps(replies))


async def one_session(host, port, sender, rcpt, data):
    try:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)

        async def reply():
            while True:
                line = await asyncio.wait_for(reader.readline(), 600)
                if not line:
                    return "closed"
                if line[3:4] != b"-":
                    return line.decode(errors="replace").strip()

        await reply()
        for cmd in [b"EHLO flood\r\n", f"MAIL FROM:<{sender}>\r\n".encode(), f"RCPT TO:<{rcpt}>\r\n".encode(), b"DATA\r\n"]:
            writer.write(cmd)
            r = await reply()
            if r == "closed" or r[0] not in "23":
                return r
        for i in range(0, len(data), 1 << 16):
            writer.write(data[i:i + (1 << 16)])
            await writer.drain()
        writer.write(b".\r\n")
        await writer.drain()
        r = await reply()
        writer.write(b"QUIT\r\n")
        writer.close()
        return r
    except Exception as e:
        return f"error {type(e).__name__}: {e}"


async def flood(host, port, sender, rcpt, path, n):
    data = open(path, "rb").read()
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    results = await asyncio.gather(*(one_session(host, port, sender, rcpt, data) for _ in range(n)))
    print(json.dumps(results))


def trickle(host, port, n, seconds):
    import socket, time
    conns = []
    for _ in range(n):
        s = socket.create_connection((host, port))
        s.settimeout(0.05)
        conns.append({"sock": s, "closed": None, "said": b""})
    start = time.time()
    i = 0
    while time.time() - start < seconds and any(c["closed"] is None for c in conns):
        for c in conns:
            if c["closed"] is not None:
                continue
            try:
                c["sock"].sendall(b"NOOP"[i % 4:i % 4 + 1])
            except OSError:
                c["closed"] = time.time() - start
                continue
            try:
                data = c["sock"].recv(4096)
                if data == b"":
                    c["closed"] = time.time() - start
                c["said"] += data
            except socket.timeout:
                pass
            except OSError:
                c["closed"] = time.time() - start
        i += 1
        time.sleep(0.3)
    print(json.dumps([{"closed": c["closed"], "said": c["said"].decode(errors="replace")} for c in conns]))


def main():
    if sys.argv[1] == "guess":
        _, _, host, port, user, wrong, right, n = sys.argv
        guess(host, int(port), user, wrong, right, int(n))
    elif sys.argv[1] == "flood":
        _, _, host, port, sender, rcpt, path, n = sys.argv
        asyncio.run(flood(host, int(port), sender, rcpt, path, int(n)))
    elif sys.argv[1] == "trickle":
        _, _, host, port, n, seconds = sys.argv
        trickle(host, int(port), int(n), float(seconds))


if __name__ == "__main__":
    main()
