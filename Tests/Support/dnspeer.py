#!/usr/bin/env python3
"""dnspython as a DNS peer for the DNSCore tests.

  dnspeer.py parse      < hex of a wire message   -> dnspython's to_text() of it (exit 1 if it cannot parse it)
  dnspeer.py response   -> hex of a response dnspython builds (compressed), with CERT, MX, SOA, SRV, TXT, A, AAAA
"""
import binascii
import sys

import dns.message
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset


def response():
    q = dns.message.make_query("alice.direct.example.org.", "CERT", use_edns=0, payload=1232)
    r = dns.message.make_response(q)
    r.use_edns(0, payload=1232)
    r.flags |= dns.flags.AA
    cert = binascii.unhexlify(sys.argv[2]) if len(sys.argv) > 2 else b"\x30\x03\x02\x01\x01"
    import base64
    r.answer.append(dns.rrset.from_text("alice.direct.example.org.", 3600, "IN", "CERT",
                                        "PKIX 0 0 " + base64.b64encode(cert).decode()))
    r.authority.append(dns.rrset.from_text("direct.example.org.", 3600, "IN", "NS", "ns1.direct.example.org."))
    r.additional.append(dns.rrset.from_text("ns1.direct.example.org.", 3600, "IN", "A", "192.0.2.53"))
    r.additional.append(dns.rrset.from_text("ns1.direct.example.org.", 3600, "IN", "AAAA", "2001:db8::53"))
    r.additional.append(dns.rrset.from_text("direct.example.org.", 300, "IN", "MX", "10 mail.direct.example.org."))
    r.additional.append(dns.rrset.from_text("direct.example.org.", 300, "IN", "SOA",
                                            "ns1.direct.example.org. hostmaster.direct.example.org. 2026112301 3600 600 604800 300"))
    r.additional.append(dns.rrset.from_text("_ldap._tcp.direct.example.org.", 300, "IN", "SRV", "0 5 389 ldap.direct.example.org."))
    r.additional.append(dns.rrset.from_text("direct.example.org.", 300, "IN", "TXT", '"v=spf1 -all" "second"'))
    sys.stdout.write(r.to_wire().hex())


def parse():
    wire = binascii.unhexlify(sys.stdin.read().strip())
    try:
        m = dns.message.from_wire(wire)
    except Exception as e:  # noqa: BLE001 - report any parse failure
        sys.stderr.write(f"{type(e).__name__}: {e}\n")
        sys.exit(1)
    sys.stdout.write(m.to_text())


if __name__ == "__main__":
    {"parse": parse, "response": response}[sys.argv[1]]()
