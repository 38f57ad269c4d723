"""A test certificate set generated with cryptography: PEM, encrypted PEM, PFX, a chain."""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

PASSPHRASE = "correct horse battery staple"
CERT_CLIENT_ID = "6f1c2b0e-2a44-4b43-9c59-0c8f5f1e7d21"


@dataclass(frozen=True)
class CertSet:
    """One client certificate (signed by a test CA) in every format msal accepts."""

    key_pem: str
    encrypted_key_pem: str
    cert_pem: str
    chain_pem: str  # leaf then CA
    ca_pem: str
    pfx_path: str
    encrypted_pfx_path: str
    sha1_hex: str
    other_key_pem: str  # a key that does not match the certificate

    def credentials(self) -> dict[str, dict[str, object]]:
        """Every certificate client_credential shape, by name."""
        return {
            "pem+thumbprint": {"private_key": self.key_pem, "thumbprint": self.sha1_hex},
            "pem+certificate": {"private_key": self.key_pem, "public_certificate": self.cert_pem},
            "pem+thumbprint+chain": {
                "private_key": self.key_pem,
                "thumbprint": self.sha1_hex,
                "public_certificate": self.chain_pem,
            },
            "encrypted-pem": {
                "private_key": self.encrypted_key_pem,
                "passphrase": PASSPHRASE,
                "public_certificate": self.cert_pem,
            },
            "pfx": {"private_key_pfx_path": self.pfx_path},
            "pfx+passphrase": {
                "private_key_pfx_path": self.encrypted_pfx_path,
                "passphrase": PASSPHRASE,
            },
            "pfx+x5c": {
                "private_key_pfx_path": self.pfx_path,
                "public_certificate": True,
            },
        }


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str, key: rsa.RSAPrivateKey, issuer: str, issuer_key: rsa.RSAPrivateKey, *, ca: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def self_signed(common_name: str = "client") -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A fresh RSA-2048 key and its self-signed certificate: the tests' one client certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, _issue(common_name, key, common_name, key, ca=False)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def generate_cert_set(folder: Path) -> CertSet:
    """Generate a client key and certificate (signed by a test CA) in every format."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _issue("msal-async test CA", ca_key, "msal-async test CA", ca_key, ca=True)
    leaf = _issue("msal-async test client", key, "msal-async test CA", ca_key, ca=False)
    plain = serialization.NoEncryption()
    locked = serialization.BestAvailableEncryption(PASSPHRASE.encode())
    pkcs8 = serialization.PrivateFormat.PKCS8
    pfx = folder / "client.pfx"
    pfx.write_bytes(pkcs12.serialize_key_and_certificates(b"client", key, leaf, [ca], plain))
    encrypted_pfx = folder / "client-locked.pfx"
    encrypted_pfx.write_bytes(
        pkcs12.serialize_key_and_certificates(b"client", key, leaf, [ca], locked)
    )
    der = leaf.public_bytes(serialization.Encoding.DER)
    return CertSet(
        key_pem=key.private_bytes(serialization.Encoding.PEM, pkcs8, plain).decode(),
        encrypted_key_pem=key.private_bytes(serialization.Encoding.PEM, pkcs8, locked).decode(),
        cert_pem=_pem(leaf),
        chain_pem=_pem(leaf) + _pem(ca),
        ca_pem=_pem(ca),
        pfx_path=str(pfx),
        encrypted_pfx_path=str(encrypted_pfx),
        sha1_hex=hashlib.sha1(der).hexdigest(),  # noqa: S324 - the x5t thumbprint is SHA-1
        other_key_pem=other.private_bytes(serialization.Encoding.PEM, pkcs8, plain).decode(),
    )
