"""Verifies seats with the quick journey, a few at a time: `kfbox certify --profile quick` per
seat (its bundle kept under OUT/SEAT), measuring what the seat's containers use meanwhile."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from kfbox.apps.workshop.seats import Verification
from kfbox.host.docker_engine import connect
from kfbox.host.progress import Reporter
from kfbox.host.redact import mask_text
from kfbox.host.usage import UsageSampler, sandbox_memory_mib

PROFILE = "quick"
LOG_FILE = "certify.log"
"""The certify run's own output, secrets masked, beside the seat's bundles."""


def certify_command(seat: str, out: Path) -> list[str]:
    """The seat's certification, exactly as a person would run it."""
    return [
        sys.executable, "-c", "from kfbox.cli import run; run()",
        "--name", seat, "certify", "--profile", PROFILE, "--out", str(out),
    ]  # fmt: skip


def _bundles(out: Path) -> set[Path]:
    return {p for p in out.glob(f"kfbox-{PROFILE}-*") if p.is_dir() and p.suffix != ".workspace"}


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def verify_seat(seat: str, out: Path) -> Verification:
    """Certify one seat; never raises for a journey that fails (its status says so)."""
    out.mkdir(parents=True, exist_ok=True)
    before = _bundles(out)
    client = connect()  # one per seat: verifications run in threads of their own
    idle = sandbox_memory_mib(client, seat)
    with UsageSampler(client, seat) as sampler:
        done = subprocess.run(
            certify_command(seat, out), capture_output=True, text=True, check=False
        )
    output = mask_text(done.stdout + done.stderr)
    (out / LOG_FILE).write_text(output)
    made = sorted(_bundles(out) - before)
    return Verification(
        status="certified" if done.returncode == 0 else "not certified",
        detail="" if done.returncode == 0 else _last_line(mask_text(done.stderr)),
        bundle=str(made[-1]) if made else "",
        seconds=round(sampler.seconds, 1),
        idle_memory_mib=round(idle, 1),
        peak_memory_mib=round(max(sampler.peak_memory_mib, idle), 1),
        cpu_seconds=round(sampler.cpu_seconds, 1),
        busy_cores=round(sampler.busy_cores, 2),
        verified_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def verify_seats(
    seats: list[str], out: Path, parallel: int, reporter: Reporter
) -> dict[str, Verification]:
    """Certify every seat, `parallel` at a time; each seat's line is printed as it ends."""
    results: dict[str, Verification] = {}
    running: list[str] = []
    lock = threading.Lock()
    title = f"Verifying {len(seats)} seat(s) with the {PROFILE} journey, {parallel} at a time"
    with reporter.step(title) as update:

        def show() -> None:
            update(f"{len(results)}/{len(seats)} done; running: {', '.join(running) or '-'}")

        def one(seat: str) -> None:
            with lock:
                running.append(seat)
                show()
            started = time.monotonic()
            result = verify_seat(seat, out / seat)
            with lock:
                running.remove(seat)
                results[seat] = result
                show()
            where = f"bundle {result.bundle}" if result.bundle else "no bundle"
            why = f": {result.detail}" if result.detail else ""
            reporter.info(
                f"{seat}: {result.status} in {time.monotonic() - started:.0f}s{why} ({where})"
            )

        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="seat") as pool:
            for future in [pool.submit(one, seat) for seat in seats]:
                future.result()
    return {seat: results[seat] for seat in seats}
