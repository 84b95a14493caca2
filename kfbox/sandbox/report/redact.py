"""Masks secrets (tokens, passwords, bearer credentials) in everything the bundle stores."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

# key=value, key: value and "key": "value" forms of anything secret-looking, plus HTTP
# credentials; the value stops at whitespace, quotes, '&' and markup so JSON and XML stay valid.
_SECRET_KEY = r"(?:[A-Za-z0-9_.-]*(?:token|secret|password|passwd|api[_-]?key|credential)s?)"
_KEY = re.compile(rf"(?i)^{_SECRET_KEY}$")
_PATTERNS = (
    (re.compile(rf"(?i)(\b{_SECRET_KEY}\b[\"']?\s*[=:]\s*[\"']?)[^\s\"'&<>,;}}]+"), rf"\1{MASK}"),
    (re.compile(r"(?i)(\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1{MASK}"),
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+(@)"), rf"\1{MASK}\2"),
)


def mask_text(text: str) -> str:
    """The text with every secret value replaced by ***."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def mask_tree(value: Any) -> Any:
    """A copy of a JSON-like value with every string masked, and the string value of any
    secret-named key replaced whole (structure and non-string values kept, so JSON stays valid)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {
            mask_text(str(k)): MASK if isinstance(v, str) and _KEY.match(str(k)) else mask_tree(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_tree(v) for v in value]
    return value
