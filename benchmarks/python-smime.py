#!/usr/bin/env python3
"""The outgoing S/MIME work of a Direct message done by Python's `cryptography`
on OpenSSL 3, as a peer's yardstick for `hisp bench smime` (issue "Key
providers"): sign a message of SIZE bytes in DER (RSA-2048, SHA-256, the
signer's certificate included) and envelope the signed result to one RSA-2048
recipient with AES-256-CBC, for SECONDS on one core. Prints messages per
second and the raw RSA-2048 signing rate measured in the same run.

  benchmarks/python-smime.py [SIZE, default 10000] [SECONDS, default 5]
"""
import datetime
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

size = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0


def identity(address):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(address)]), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


sender_key, sender_cert = identity("alice@bench.example")
_, recipient_cert = identity("bob@bench.example")
body = ("Patient Jane Roe, referral. " * (size // 28 + 1))[:size]
message = ("From: alice@bench.example\r\nTo: bob@bench.example\r\nSubject: bench\r\n"
           "Content-Type: text/plain\r\n\r\n" + body).encode()


def outgoing():
    signed = (pkcs7.PKCS7SignatureBuilder().set_data(message).add_signer(sender_cert, sender_key, hashes.SHA256())
              .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary]))
    (pkcs7.PKCS7EnvelopeBuilder().set_data(signed).add_recipient(recipient_cert)
     .set_content_encryption_algorithm(algorithms.AES256).encrypt(serialization.Encoding.DER, []))


def raw():
    sender_key.sign(b"\x01\x02\x03", padding.PKCS1v15(), hashes.SHA256())


def rate(work, duration):
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < duration:
        work()
        n += 1
    return n / (time.perf_counter() - start)


# Interleaved halves, so that a drifting machine moves both alike.
rates = {"raw": [], "outgoing": []}
for _ in range(2):
    rates["raw"].append(rate(raw, seconds / 4))
    rates["outgoing"].append(rate(outgoing, seconds / 4))
from cryptography.hazmat.backends.openssl import backend
print(f"python cryptography {__import__('cryptography').__version__} on {backend.openssl_version_text()}")
print(f"raw RSA-2048 signs: {sum(rates['raw']) / 2:.1f}/s")
print(f"outgoing (sign DER + envelope AES-256-CBC), {len(message)} bytes: {sum(rates['outgoing']) / 2:.1f} msg/s")
