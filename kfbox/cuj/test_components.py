"""Component checks (profile `components`): every component healthy and safely exposed."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
import requests

pytestmark = pytest.mark.components


def test_every_component_is_healthy(kfbox_engine) -> None:
    status = kfbox_engine.status()
    unhealthy = [f"{c.name} ({c.detail})" for c in status.components if not c.healthy]
    assert status.components, "the engine reported no components"
    assert not unhealthy, f"unhealthy: {', '.join(unhealthy)}"


def test_every_url_is_on_loopback(kfbox_engine) -> None:
    exposed = {c.name: urlparse(c.url).hostname for c in kfbox_engine.status().components if c.url}
    assert exposed, "no component publishes a URL"
    public = {
        name: host for name, host in exposed.items() if host not in ("127.0.0.1", "localhost")
    }
    assert not public, f"published beyond loopback: {public}"


def test_notebook_server_refuses_requests_without_token(kfbox_engine) -> None:
    urls = {c.name: c.url for c in kfbox_engine.status().components}
    if "jupyter" not in urls:
        pytest.fail("no notebook server component to check", pytrace=False)
    answer = requests.get(f"{urls['jupyter']}/api/contents", timeout=10)
    assert answer.status_code == 403, f"expected 403 without a token, got {answer.status_code}"
