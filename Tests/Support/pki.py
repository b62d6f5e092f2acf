#!/usr/bin/env python3
"""Test PKI for DirectHISP's interop tests, made at test time with Python's
`cryptography` (a real implementation nobody here wrote).

    pki.py ca   DIR NAME [--bits N] [--hash sha256|sha1] [--days N]
    pki.py leaf DIR NAME --ca CA [--bits N | --ec p256|p384] [--hash H]
                [--email ADDR] [--expired] [--no-ski] [--usage sign|encrypt|both]
    pki.py sign-pkcs7 CERT KEY IN OUT      (S/MIME detached signature, SHA-256)

Writes DIR/NAME.pem (certificate) and DIR/NAME.key (PKCS#8 PEM).
"""
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID


def arg(name, default=None):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


def flag(name):
    return name in sys.argv


def new_key():
    curve = arg("--ec")
    if curve:
        return ec.generate_private_key(ec.SECP256R1() if curve == "p256" else ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(arg("--bits", "2048")))


def hash_alg():
    return {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha384": hashes.SHA384()}[arg("--hash", "sha256")]


def write(directory, name, cert, key):
    with open(f"{directory}/{name}.pem", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(f"{directory}/{name}.key", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def load(directory, name):
    with open(f"{directory}/{name}.pem", "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(f"{directory}/{name}.key", "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    return cert, key


def main():
    cmd = sys.argv[1]
    now = datetime.datetime.now(datetime.timezone.utc)
    if cmd == "sign-pkcs7":
        cert_path, key_path, in_path, out_path = sys.argv[2:6]
        cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
        key = serialization.load_pem_private_key(open(key_path, "rb").read(), None)
        data = open(in_path, "rb").read()
        out = (pkcs7.PKCS7SignatureBuilder().set_data(data)
               .add_signer(cert, key, hashes.SHA256())
               .sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature]))
        open(out_path, "wb").write(out)
        return
    directory, name = sys.argv[2], sys.argv[3]
    key = new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    if cmd == "ca":
        days = int(arg("--days", "365"))
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=365))
                   .not_valid_after(now + datetime.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        write(directory, name, builder.sign(key, hash_alg()), key)
        return
    ca_cert, ca_key = load(directory, arg("--ca"))
    if flag("--expired"):
        start, end = now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)
    else:
        start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=90)
    usage = arg("--usage", "both")
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(usage in ("sign", "both"), False, usage in ("encrypt", "both"),
                                            False, False, False, False, False, False), critical=True)
               .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(arg("--email", name))]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if not flag("--no-ski"):
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    write(directory, name, builder.sign(ca_key, hash_alg()), key)


if __name__ == "__main__":
    main()
