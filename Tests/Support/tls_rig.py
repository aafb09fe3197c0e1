#!/usr/bin/env python3
"""A TLS terminator (Debian's stunnel4) in front of an S3 server on 127.0.0.1, with a private CA
and certificates made for this run only. Three endpoints: `good` (a certificate for localhost and
127.0.0.1), `wrong_host` (for another name), `expired` (valid names, expired yesterday).

Usage: tls_rig.py BACKEND_HOST:PORT DIR [--listen HOST:PORT [--proxy-protocol]]
--listen: only the `good` endpoint, on that address, its certificate for HOST (tools/cluster's
S3 on its bridge). --proxy-protocol: each connection to the backend begins with a PROXY v1 line
naming the client (for wan_relay.py --proxy-protocol, which counts per client).
Writes DIR/ca.pem and DIR/rig.json ({"pid", "ports": {name: port}, "ca"}), then becomes stunnel
(the pid in rig.json is stunnel's own: send it SIGTERM to stop the rig).
"""
import datetime
import ipaddress
import json
import os
import socket
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

backend, directory = sys.argv[1], sys.argv[2]
listen = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--listen" else None
proxy_protocol = "--proxy-protocol" in sys.argv[5:]
now = datetime.datetime.now(datetime.timezone.utc)


def name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


ca_key = ec.generate_private_key(ec.SECP256R1())
ca = (x509.CertificateBuilder().subject_name(name("jobstored test CA")).issuer_name(name("jobstored test CA"))
      .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
      .not_valid_before(now - datetime.timedelta(days=2)).not_valid_after(now + datetime.timedelta(days=2))
      .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
      .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                   key_encipherment=False, data_encipherment=False, key_agreement=False,
                                   encipher_only=False, decipher_only=False), critical=True)
      .sign(ca_key, hashes.SHA256()))
with open(os.path.join(directory, "ca.pem"), "wb") as f:
    f.write(ca.public_bytes(serialization.Encoding.PEM))


def server_cert(file: str, names, not_after: datetime.datetime) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    alt = [x509.DNSName(n) if not n[0].isdigit() else x509.IPAddress(ipaddress.ip_address(n)) for n in names]
    cert = (x509.CertificateBuilder().subject_name(name(names[0])).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=2)).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    path = os.path.join(directory, file)
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM) + pem_key(key))
    os.chmod(path, 0o600)
    return path


if listen:
    certs = {"good": server_cert("good.pem", [listen.rsplit(":", 1)[0]], now + datetime.timedelta(days=1))}
else:
    certs = {
        "good": server_cert("good.pem", ["localhost", "127.0.0.1"], now + datetime.timedelta(days=1)),
        "wrong_host": server_cert("wrong-host.pem", ["other.invalid"], now + datetime.timedelta(days=1)),
        "expired": server_cert("expired.pem", ["localhost", "127.0.0.1"], now - datetime.timedelta(days=1)),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ports = {service: int(listen.rsplit(":", 1)[1]) if listen else free_port() for service in certs}
host = listen.rsplit(":", 1)[0] if listen else "127.0.0.1"
config = ["foreground = yes", "pid =", "debug = 3", f"output = {os.path.join(directory, 'stunnel.log')}", ""]
for service, cert in certs.items():
    config += [f"[{service}]", f"accept = {host}:{ports[service]}", f"connect = {backend}", f"cert = {cert}"]
    config += ["protocol = proxy", ""] if proxy_protocol else [""]
conf = os.path.join(directory, "stunnel.conf")
with open(conf, "w") as f:
    f.write("\n".join(config))
with open(os.path.join(directory, "rig.json.tmp"), "w") as f:
    json.dump({"pid": os.getpid(), "ports": ports, "ca": os.path.join(directory, "ca.pem")}, f)
os.replace(os.path.join(directory, "rig.json.tmp"), os.path.join(directory, "rig.json"))
os.execvp("stunnel4", ["stunnel4", conf])
