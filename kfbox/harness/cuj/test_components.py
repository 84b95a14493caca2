"""The platform's own requirements (marker `components`), derived from what the engine declares
it exposes (Engine.capabilities) and reports (Engine.status), never from one engine's habits."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
import requests

from kfbox.engines.base import Capabilities, SandboxStatus

pytestmark = pytest.mark.components
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
NAMED_SOFTWARE = ("python", "torch", "kserve", "kubeflow")
"""Software every certificate must name (Capabilities.software keys): the Python the workloads
run, torch, KServe's model server and the Kubeflow SDK."""


@pytest.fixture(scope="module")
def status(kfbox_engine) -> SandboxStatus:
    return kfbox_engine.status()


@pytest.fixture(scope="module")
def capabilities(kfbox_engine) -> Capabilities:
    return kfbox_engine.capabilities()


def _host(url: str) -> str:
    return urlparse(url if "://" in url else f"http://{url}").hostname or ""


def _within(host: str, listen: str) -> bool:
    """A port on `host` reaches no further than the declared `listen`: the same address, or
    loopback (which every host keeps to itself; a registry stays there whatever is declared)."""
    return host == listen or host in LOOPBACK


@pytest.mark.requirement("platform.healthy")
def test_every_component_is_healthy(status: SandboxStatus, kfbox_check) -> None:
    unhealthy = [f"{c.name} ({c.detail})" for c in status.components if not c.healthy]
    if not status.components:
        kfbox_check(False, "the engine reported no components")
    kfbox_check(not unhealthy, f"unhealthy: {', '.join(unhealthy)}" if unhealthy else
                f"{len(status.components)} healthy: {', '.join(c.name for c in status.components)}")


@pytest.mark.requirement("platform.listen-address")
def test_every_port_listens_on_the_declared_address(
    status: SandboxStatus, capabilities: Capabilities, kfbox_check
) -> None:
    published = {c.name: c.url for c in status.components if c.url}
    if capabilities.notebook is not None:
        published.setdefault("notebook", capabilities.notebook.url)
    if capabilities.registry:
        published.setdefault("registry", capabilities.registry)
    wrong = {name: _host(url) for name, url in published.items()
             if not _within(_host(url), capabilities.listen)}
    kfbox_check(
        not wrong,
        f"listening beyond the declared {capabilities.listen}: {wrong}" if wrong else
        f"{', '.join(published) or 'nothing'} on {capabilities.listen}",
    )


@pytest.mark.requirement("platform.notebook-access")
def test_notebook_server_can_be_opened_with_its_declared_auth(
    kfbox_engine, status: SandboxStatus, capabilities: Capabilities, kfbox_check
) -> None:
    notebook = capabilities.notebook
    if notebook is None:
        kfbox_check(False, f"engine {kfbox_engine.spec.engine!r} declares no notebook server a "
                           "person can open")
        return
    api = f"{notebook.url.rstrip('/')}/api/status"
    if notebook.auth == "none":
        opened = requests.get(api, timeout=10).status_code
        kfbox_check(opened == 200, f"{api} answers {opened} without a token (auth: none)")
        return
    refused = requests.get(api, timeout=10).status_code
    kfbox_check(refused in (401, 403), f"{api} answers {refused} without its token "
                                       "(expected 401 or 403)")
    login = next((kfbox_engine.login_url(c.name) for c in status.components
                  if c.url and notebook.url.startswith(c.url) and kfbox_engine.login_url(c.name)),
                 None)
    token = (parse_qs(urlparse(login).query).get("token") or [""])[0] if login else ""
    opened = requests.get(api, params={"token": token}, timeout=10).status_code if token else 0
    kfbox_check(opened == 200, f"{api} answers {refused} without its token and {opened} with it"
                if token else "the engine gives no login URL with the token")


@pytest.mark.requirement("platform.tracking-access")
def test_tracking_server_answers_only_with_its_login(
    kfbox_engine, capabilities: Capabilities, kfbox_check
) -> None:
    tracking = capabilities.tracking
    if tracking is None:
        kfbox_check(False, f"engine {kfbox_engine.spec.engine!r} declares no tracking server")
        return
    api = f"{tracking.url.rstrip('/')}/api/2.0/mlflow/experiments/search?max_results=1"
    login = urlparse(kfbox_engine.login_url("tracking") or "")
    refused = requests.get(api, timeout=10).status_code
    wrong = requests.get(api, auth=(login.username or "kfbox", "not-the-password"),
                         timeout=10).status_code
    opened = requests.get(api, auth=(login.username, login.password),
                          timeout=10).status_code if login.password else 0
    kfbox_check(refused == 401 and wrong == 401 and opened == 200,
                f"{api} answers {refused} without its login, {wrong} with a wrong one and "
                f"{opened} with the engine's" if login.password else
                "the engine gives no login for its tracking server")


@pytest.mark.requirement("platform.registry")
def test_registry_answers(capabilities: Capabilities, kfbox_check) -> None:
    if not capabilities.registry:
        kfbox_check(False, "the engine declares no image registry")
        return
    url = f"http://{capabilities.registry}/v2/"
    try:
        code = requests.get(url, timeout=10).status_code
    except requests.RequestException as exc:
        kfbox_check(False, f"{url}: {exc}")
        return
    kfbox_check(code == 200, f"{url} answers {code}")


@pytest.mark.requirement("platform.model-store")
def test_model_store_is_named(capabilities: Capabilities, kfbox_check) -> None:
    kfbox_check(bool(capabilities.model_store), capabilities.model_store or
                "the engine names no model store")


@pytest.mark.requirement("platform.software")
def test_software_versions_are_named(capabilities: Capabilities, kfbox_check) -> None:
    missing = [name for name in NAMED_SOFTWARE if not capabilities.software.get(name)]
    named = ", ".join(f"{k} {v}" for k, v in sorted(capabilities.software.items()))
    kfbox_check(not missing, f"no version for {', '.join(missing)}" if missing else named)
