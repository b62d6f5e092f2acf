#!/usr/bin/env python3
"""Submits Direct messages the way a mail client does: STARTTLS, AUTH PLAIN, one
connection. Used by the gateway tests (Python's smtplib is the client nobody here
wrote).

  submit.py HOST PORT USER PASSWORD TO[,TO...] --subject S --message-id ID [--dispatched]
  submit.py HOST PORT USER PASSWORD TO --count N --acks FILE [--kill PID --after K]

With --count, sends N messages (subjects "stream N", Message-IDs <stream-N@domain>)
and appends the Message-ID of each one the server accepted (250) to FILE at once.
With --kill, sends SIGKILL to PID shortly after the K-th acceptance, while
messages are still in flight, and stops at the first broken connection.
"""
import argparse
import os
import signal
import smtplib
import ssl
import sys
import threading
import time
from email.utils import formatdate


def message(sender, recipients, subject, message_id, dispatched, body):
    lines = [
        f"From: {sender}",
        f"To: {', '.join(recipients)}",
        f"Subject: {subject}",
        f"Date: {formatdate()}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    if dispatched:
        lines.append("Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def connect(host, port, user, password):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    s = smtplib.SMTP(host, port, timeout=30)
    s.ehlo("submit-test")
    s.starttls(context=context)
    s.ehlo("submit-test")
    s.login(user, password)
    return s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("user")
    p.add_argument("password")
    p.add_argument("to")
    p.add_argument("--subject", default="test")
    p.add_argument("--message-id")
    p.add_argument("--dispatched", action="store_true")
    p.add_argument("--body", default="Patient Jane Roe, DOB 1970-01-01. Referral attached.\r\n")
    p.add_argument("--count", type=int)
    p.add_argument("--acks")
    p.add_argument("--kill", type=int)
    p.add_argument("--after", type=int, default=10)
    a = p.parse_args()
    recipients = a.to.split(",")
    domain = a.user.split("@")[1]
    s = connect(a.host, a.port, a.user, a.password)
    if a.count is None:
        refused = s.sendmail(a.user, recipients, message(a.user, recipients, a.subject, a.message_id, a.dispatched, a.body))
        print("refused:", refused if refused else "none")
        s.quit()
        return 0
    acks = open(a.acks, "a")
    accepted = 0
    for n in range(a.count):
        mid = f"<stream-{n}@{domain}>"
        try:
            s.sendmail(a.user, recipients, message(a.user, recipients, f"stream {n}", mid, True, a.body))
        except (smtplib.SMTPException, OSError) as e:
            print(f"stopped at message {n}: {e!r}")
            break
        acks.write(mid + "\n")
        acks.flush()
        os.fsync(acks.fileno())
        accepted += 1
        if a.kill and accepted == a.after:
            # Kill while the next messages are being sent and stored.
            threading.Timer(0.05, lambda: os.kill(a.kill, signal.SIGKILL)).start()
    print(f"accepted {accepted}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
