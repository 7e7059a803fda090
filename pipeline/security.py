"""Keep credentials out of everything the pipeline prints or stores.

Credentials (STAC signing tokens, storage keys) reach the pipeline only from
the environment or the standard credential chains of fsspec/boto/azure, or
inside a URL a user pasted (``...?token=...``, ``https://user:pass@host``).
Whatever is logged, raised as a one-line error, written to the store's attrs
or to the provenance goes through :func:`redact` first:

* values of well-known secret environment variables are replaced wherever
  they appear;
* URL passwords and secret-looking query parameters (token, key, sig, ...)
  become ``***``.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: Placeholder written instead of a secret.
MASK = "***"

#: Environment variables that hold credentials (their values are never shown).
SECRET_ENV: tuple[str, ...] = (
    "PC_SDK_SUBSCRIPTION_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING",
    "GS_SECRET_ACCESS_KEY",
    "STAC_API_TOKEN",
)

#: Query parameters whose value is a credential (lower case; Azure SAS, S3 presign, API keys).
SECRET_PARAMS = frozenset(
    {
        "token",
        "access_token",
        "api_key",
        "apikey",
        "key",
        "subscription-key",
        "password",
        "sig",
        "signature",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
    }
)

_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")

#: Secrets shorter than this are not masked by value (too likely to hit ordinary text).
_MIN_SECRET_LEN = 6


def redact_url(url: str) -> str:
    """``url`` with its password and secret query values replaced by :data:`MASK`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(k.lower() in SECRET_PARAMS for k, _ in pairs):
        masked = [(k, MASK if k.lower() in SECRET_PARAMS else v) for k, v in pairs]
        query = urlencode(masked, safe="*")
    if netloc == parts.netloc and query == parts.query:
        return url  # nothing secret: keep the URL exactly as given
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _env_secrets() -> list[str]:
    values = (os.environ.get(name, "") for name in SECRET_ENV)
    return sorted((v for v in values if len(v) >= _MIN_SECRET_LEN), key=len, reverse=True)


def redact_text(text: str) -> str:
    """``text`` with every URL redacted and every secret environment value masked."""
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    for secret in _env_secrets():
        text = text.replace(secret, MASK)
    return text


def redact(value: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings) with :func:`redact_text` applied."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
