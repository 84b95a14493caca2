"""Masks secrets (tokens, passwords, bearer credentials) in everything the results bundle stores."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
_MASK_BYTES = MASK.encode()

_SECRET_WORD = rb"(?:token|secret(?:[_-]?key)?|password|passwd|api[_-]?key|credential)s?"
# Each pattern's group 1 ends where the secret value starts; the match ends where it ends.
# Scanning tens of MiB of logs with a regex at every offset would blow the results bundle's time
# budget, so each pattern is tried only where one of its literal openings occurs (found with
# bytes.find, at memchr speed) in an ASCII-lowercased copy: bytes.lower() keeps every offset,
# since multi-byte UTF-8 never contains ASCII bytes.
_PATTERNS: tuple[tuple[tuple[bytes, ...], re.Pattern[bytes]], ...] = (
    # key=value, key: value, "key": "value" (JUPYTER_TOKEN=, ?token=, "api_key": ...); the
    # value stops at whitespace, quotes, '&' and markup so JSON, XML and URLs stay valid.
    ((b"token", b"secret", b"passw", b"api_key", b"api-key", b"apikey", b"credential"),
     re.compile(rb"(" + _SECRET_WORD + rb"\b[\"']?\s*[=:]\s*[\"']?)[^\s\"'&<>,;}]+")),
    ((b"bearer", b"basic"), re.compile(rb"(\b(?:bearer|basic)\s+)[a-z0-9._~+/=-]{8,}")),
    ((b"://",), re.compile(rb"(://[^/\s:@]+:)[^@\s/]+(?=@)")),  # user:password@ in a URL
)
_KEY_ENDS_SECRET = re.compile(_SECRET_WORD.decode() + "$", re.IGNORECASE)  # jupyter_token, ...


def _secret_spans(lowered: bytes) -> list[tuple[int, int]]:
    spans = []
    for openings, pattern in _PATTERNS:
        for opening in openings:
            hit = lowered.find(opening)
            while hit >= 0:
                match = pattern.match(lowered, hit)
                if match:
                    spans.append((match.end(1), match.end()))
                hit = lowered.find(opening, hit + 1)
    return sorted(spans)


def mask_bytes(data: bytes) -> bytes:
    """The data with every secret value replaced by ***."""
    spans = _secret_spans(data.lower())
    if not spans:
        return data
    pieces, cursor = [], 0
    for start, end in spans:
        if end <= cursor:  # inside a value already masked
            continue
        start = max(start, cursor)
        pieces += [data[cursor:start], _MASK_BYTES]
        cursor = end
    pieces.append(data[cursor:])
    return b"".join(pieces)


def mask_text(text: str) -> str:
    """The text with every secret value replaced by ***."""
    return mask_bytes(text.encode("utf-8", "surrogatepass")).decode("utf-8", "surrogatepass")


def mask_tree(value: Any) -> Any:
    """A copy of a JSON-like value with every string masked, and the string value of any
    secret-named key replaced whole (structure and non-string values kept, so JSON stays valid)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {
            mask_text(str(k)): MASK
            if isinstance(v, str) and _KEY_ENDS_SECRET.search(str(k))
            else mask_tree(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_tree(v) for v in value]
    return value
