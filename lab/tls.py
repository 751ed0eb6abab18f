"""The lab's certificate authority: one per lab (<state dir>/tls/ca.crt), and a server certificate
per server whose subjectAltName is the server's IP address, so that clients verify the server
with sslmode=verify-full (libpq compares the address it connected to with that name).

`cryptography` (a requirement of the virtualenv) is imported on use: the rest of the lab, and so
`python3 -m lab packages`, imports only the standard library.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

VALIDITY = datetime.timedelta(days=825)


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    # P-256: a fast handshake, which matters to a writer reconnecting during a switchover.
    return ec.generate_private_key(ec.SECP256R1())


def _pem(obj) -> bytes:
    from cryptography.hazmat.primitives import serialization

    if hasattr(obj, "private_bytes"):
        return obj.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())
    return obj.public_bytes(serialization.Encoding.PEM)


def _certificate(common_name: str, public_key, signing_key, issuer=None,
                 address: str | None = None):
    """A CA certificate (self-signed: no issuer) or a server certificate for `address`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            signing_key.public_key()), critical=False)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=issuer is None, crl_sign=issuer is None,
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
    )
    if address:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def write_ca(directory: Path, name: str) -> Path:
    """A self-signed CA in `directory` (ca.crt, readable by all; ca.key, by us only); returns
    the certificate's path. Also what a test uses as a CA that signed none of the lab's servers."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    key = _new_key()
    cert = _certificate(name, key.public_key(), key)
    key_path = directory / "ca.key"
    key_path.write_bytes(b"")
    os.chmod(key_path, 0o600)
    key_path.write_bytes(_pem(key))
    cert_path = directory / "ca.crt"
    cert_path.write_bytes(_pem(cert))
    os.chmod(cert_path, 0o644)
    return cert_path


class LabCA:
    """The CA of one lab, created on first use; its key stays with the lab's controlling user."""

    def __init__(self, directory: Path, runner) -> None:
        self.directory = directory
        self.runner = runner

    @property
    def cert_path(self) -> Path:
        return self.directory / "ca.crt"

    def ensure(self) -> Path:
        if not self.cert_path.exists():
            write_ca(self.directory, f"failsafe lab CA {self.directory.parent}")
        return self.cert_path

    def issue(self, name: str, address: str, cert_path: Path, key_path: Path) -> None:
        """A server certificate for `address`, signed by this CA; both files belong to the
        servers' user, the key readable by it only."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        self.ensure()
        ca_cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        ca_key = serialization.load_pem_private_key((self.directory / "ca.key").read_bytes(), None)
        key = _new_key()
        cert = _certificate(name, key.public_key(), ca_key, ca_cert.subject, address)
        self.runner.write_file(key_path, _pem(key).decode(), 0o600)
        self.runner.write_file(cert_path, _pem(cert).decode(), 0o644)
