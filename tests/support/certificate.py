"""A self-signed certificate for 127.0.0.1, for the local HTTPS servers (the Azure ML fake, Azurite over
HTTPS): made once per process with `cryptography`, so no openssl command line is needed."""

from __future__ import annotations

import datetime as dt
import ipaddress
import tempfile
import threading
from pathlib import Path

_lock = threading.Lock()
_certificate: tuple[str, str] | None = None


def self_signed_certificate() -> tuple[str, str]:
    """(cert.pem, key.pem) in a temporary folder; the certificate is its own CA (trust cert.pem)."""
    global _certificate
    with _lock:
        if _certificate is None:
            from cryptography import x509
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.x509.oid import NameOID

            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
            now = dt.datetime.now(dt.UTC)
            certificate = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256())
            )
            folder = Path(tempfile.mkdtemp(prefix="loopback-tls-"))
            (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
            (folder / "key.pem").write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
            _certificate = (str(folder / "cert.pem"), str(folder / "key.pem"))
        return _certificate
