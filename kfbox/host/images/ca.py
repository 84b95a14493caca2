"""The host's CA bundle, copied into every image so TLS works behind inspecting proxies too."""

from __future__ import annotations

import os
from pathlib import Path

CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # Alpine, macOS
)
ENV_HINTS = ("KFBOX_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "PIP_CERT")


def find_ca_bundle() -> Path | None:
    """The bundle the host's own tools trust: an explicit env setting first, then the OS file."""
    for var in ENV_HINTS:
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    for candidate in CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    return None
