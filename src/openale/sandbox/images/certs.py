"""PEM certificate bundles: splitting them into certificates and reading the extra CA files.

The base image trusts these certificates (see ``base``); every image openale
builds starts from it, so task and EnvHub builds inherit that trust.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from pathlib import Path

from openale.sandbox.images.names import ImageBuildError

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\s+(.+?)\s+-----END CERTIFICATE-----", re.S)


def split_pem_certificates(data: bytes) -> list[bytes]:
    """The ``BEGIN CERTIFICATE`` blocks of a PEM bundle, each normalised to one block."""
    blocks = []
    for m in _PEM_CERT.finditer(data):
        body = base64.encodebytes(base64.b64decode(b"".join(m.group(1).split())))
        blocks.append(b"-----BEGIN CERTIFICATE-----\n" + body + b"-----END CERTIFICATE-----")
    return blocks


def read_pem_files(paths: Iterable[Path]) -> list[bytes]:
    """Every certificate of the given PEM files; a file with none is an error."""
    pems = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise ImageBuildError(f"cannot read CA file {path}: {e.strerror}") from None
        found = split_pem_certificates(data)
        if not found:
            raise ImageBuildError(f"{path} holds no PEM certificate")
        pems.extend(found)
    return pems


def der(pem: bytes) -> bytes:
    """The certificate's bytes, to tell certificates apart whatever their PEM layout."""
    m = _PEM_CERT.search(pem)
    if m is None:
        raise ImageBuildError("not a PEM certificate")
    try:
        return base64.b64decode(b"".join(m.group(1).split()), validate=True)
    except binascii.Error:
        raise ImageBuildError("malformed PEM certificate (bad base64)") from None
