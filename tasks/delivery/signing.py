"""Who signs the Content Credentials (tasks/delivery/credentials.py) of delivered files.

The studio's identity is a certificate chain and its private key, configured as files
(`TRACKFOUNDRY_SIGNING_CERT_FILE`, `TRACKFOUNDRY_SIGNING_KEY_FILE`; the key may instead live in a Prefect Secret
block, `TRACKFOUNDRY_SIGNING_KEY_SECRET_BLOCK`, read like the provider's API key). Without one, files are still
marked (EU AI Act Art. 50(2) asks for a machine-readable mark, not a trusted one) with a development identity
made once per state directory: a root CA that nobody trusts and a leaf certificate it issued. C2PA validators
refuse self-signed leaf certificates and check the leaf's profile (not a CA, digitalSignature key usage, an
allowed extended key usage), so the development identity is a real two-level chain: its manifests read back as
"untrusted" (signature and hard binding valid), and "valid" only where its root is given as a trust anchor.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from tasks.settings import PipelineSettings

DEV_DIR_NAME = "development"  # state_dir/signing/development/{chain,key,root}.pem
DEV_ROOT_NAME = "TrackFoundry development root - not trusted"
DEV_SIGNER_NAME = "TrackFoundry development signer"
_DEV_ORG = "TrackFoundry (development)"
# emailProtection is in the default EKU list c2pa-rs checks (0.91 refuses a leaf with documentSigning alone:
# "certificate missing required EKU"); documentSigning (RFC 9336) is the EKU the C2PA profile names.
_EKUS = (ExtendedKeyUsageOID.EMAIL_PROTECTION, ObjectIdentifier("1.3.6.1.5.5.7.3.36"))
_ROOT_YEARS, _LEAF_YEARS = 30, 25  # no timestamp authority offline: the signature is valid while the leaf is


class SigningError(Exception):
    """The configured signing identity cannot be used (missing half, unreadable, unsupported key)."""


@dataclass(frozen=True)
class Signing:
    """A signer identity: the certificate chain (leaf first, PEM), its private key (PEM, never printed), the C2PA
    algorithm name the key signs with, an optional timestamp authority, and whether it is the development
    identity (whose root, `root_pem`, is what a test or a reviewer passes as trust anchor)."""

    chain_pem: str
    key_pem: str = field(repr=False)
    alg: str
    development: bool
    root_pem: str | None = None
    timestamp_url: str | None = None


def signing_identity(settings: PipelineSettings) -> Signing:
    """The studio's identity when a certificate is configured, else the development identity of
    `settings.state_dir` (made on first use, then reused: every file of every run names the same signer)."""
    if settings.signing_cert_file is None:
        if settings.signing_key_file is not None or settings.signing_key_secret_block:
            raise SigningError("a signing key is configured without its certificate: set "
                               "TRACKFOUNDRY_SIGNING_CERT_FILE")
        return development_identity(settings.state_dir)
    chain = _read_text(settings.signing_cert_file, "certificate chain")
    if settings.signing_key_file is not None:
        key = _read_text(settings.signing_key_file, "private key")
    elif settings.signing_key_secret_block:
        from prefect.blocks.system import Secret

        key = str(Secret.load(settings.signing_key_secret_block).get())
    else:
        raise SigningError("a signing certificate is configured without its key: set TRACKFOUNDRY_SIGNING_KEY_FILE "
                           "or TRACKFOUNDRY_SIGNING_KEY_SECRET_BLOCK")
    return Signing(chain, key, key_algorithm(key), development=False, timestamp_url=settings.signing_timestamp_url)


def key_algorithm(key_pem: str) -> str:
    """The C2PA signing algorithm for a key: the curve decides ECDSA's hash; RSA signs with PSS (C2PA does not
    allow PKCS#1 v1.5)."""
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise SigningError(f"the signing key is not an unencrypted PEM private key: {exc}") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algs = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in algs:
            return algs[key.curve.name]
        raise SigningError(f"C2PA does not sign with the curve {key.curve.name}")
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise SigningError(f"C2PA does not sign with a {type(key).__name__}")


def development_identity(state_dir: Path) -> Signing:
    """The development identity under `state_dir`/signing/development, made there once. The three files appear
    together (written in a private temporary folder renamed into place), so concurrent first runs agree on one
    identity: the loser of the rename uses the winner's."""
    home = Path(state_dir) / "signing"
    final = home / DEV_DIR_NAME
    if not (final / "key.pem").exists():
        home.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=home, prefix=".development."))  # mode 0700
        try:
            for name, text, mode in _new_development_files():
                fd = os.open(staging / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
                with os.fdopen(fd, "w") as fh:
                    fh.write(text)
            try:
                os.rename(staging, final)
            except OSError:
                if not (final / "key.pem").exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    chain, key = (final / "chain.pem").read_text(), (final / "key.pem").read_text()
    return Signing(chain, key, key_algorithm(key), development=True, root_pem=(final / "root.pem").read_text())


def _read_text(path: Path, what: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise SigningError(f"cannot read the signing {what} {path}: {exc.strerror}") from None


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, _DEV_ORG)])


def _key_usage(*, sign_certs: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not sign_certs, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=sign_certs,
                         crl_sign=sign_certs, encipher_only=False, decipher_only=False)


def _new_development_files() -> list[tuple[str, str, int]]:
    """A P-256 root CA and a leaf signing certificate it issued: (file name, PEM text, file mode)."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # a little slack for clock skew
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = (x509.CertificateBuilder()
            .subject_name(_name(DEV_ROOT_NAME)).issuer_name(_name(DEV_ROOT_NAME))
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=365 * _ROOT_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(sign_certs=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(_name(DEV_SIGNER_NAME)).issuer_name(root.subject)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=365 * _LEAF_YEARS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(sign_certs=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(list(_EKUS)), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key_pem = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    root_pem = root.public_bytes(pem).decode()
    # The root's key is not kept: nothing more is ever issued under it.
    return [("chain.pem", leaf.public_bytes(pem).decode() + root_pem, 0o644), ("root.pem", root_pem, 0o644),
            ("key.pem", key_pem.decode(), 0o600)]
