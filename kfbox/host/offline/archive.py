"""The bundle file: an uncompressed tar (its images member is gzip inside) with the manifest and
bootstrap first; packed from a staged folder, then read back, verified member by member against
the manifest, and streamed from without unpacking."""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from kfbox.host.errors import UsageError
from kfbox.host.offline.manifest import (
    BOOTSTRAP,
    INSTALL_DEBS,
    MANIFEST,
    SUMS,
    Manifest,
    Member,
    parse_manifest,
    sums_text,
)

CHUNK = 1 << 20
FIRST = (BOOTSTRAP, MANIFEST, SUMS, INSTALL_DEBS)
"""Members a reader needs before the rest, in archive order: the big ones come last."""
EXECUTABLE = (BOOTSTRAP, INSTALL_DEBS)
COPY_AGAIN = "copy the bundle again from where it was made"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def members_of(staged: Path) -> dict[str, Member]:
    """Every file under `staged` (but the manifest and the sums) → its sha256 and size."""
    return {
        path.relative_to(staged).as_posix(): Member(sha256=sha256_file(path),
                                                    size=path.stat().st_size)
        for path in sorted(staged.rglob("*"))
        if path.is_file() and path.name not in (MANIFEST, SUMS)
    }


class _Hashing:
    """A write-only file that hashes what goes through it: the archive's sha256 as it is
    written, without reading a GB back."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.target.write(data)


def pack(staged: Path, manifest: Manifest, out: Path) -> str:
    """Write `staged` as the bundle `out` (via a .partial file, so no complete-looking bundle
    is ever half written) with the manifest listing every member, SHA256SUMS for the
    bootstrap, and `out`.sha256 beside it; returns the bundle's sha256."""
    found = members_of(staged)
    rest = sorted(p for p in found if p not in FIRST)
    # Images last: a reader (and tar --occurrence) finds the small members early. Members are
    # listed in archive order, so the first one a check finds missing is where a copy ended.
    ordered = [*(p for p in FIRST if p in found or p in (MANIFEST, SUMS)),
               *(p for p in rest if not p.startswith("images/")),
               *(p for p in rest if p.startswith("images/"))]
    (staged / SUMS).write_text(sums_text({p: found[p] for p in ordered if p in found}))
    found[SUMS] = Member(sha256=sha256_file(staged / SUMS), size=(staged / SUMS).stat().st_size)
    manifest.members = {p: found[p] for p in ordered if p != MANIFEST}
    (staged / MANIFEST).write_bytes(manifest.to_json())
    partial = out.with_name(out.name + ".partial")
    try:
        with partial.open("wb") as raw:
            sink = _Hashing(raw)
            with tarfile.open(fileobj=sink, mode="w|", format=tarfile.GNU_FORMAT) as tar:
                for name in ordered:
                    with (staged / name).open("rb") as source:
                        tar.addfile(_info(staged / name, name), source)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    digest = sink.digest.hexdigest()
    out.with_name(out.name + ".sha256").write_text(f"{digest}  {out.name}\n")
    return digest


def _info(path: Path, name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = path.stat().st_size
    info.mtime = int(path.stat().st_mtime)
    info.mode = 0o755 if name in EXECUTABLE else 0o644
    info.uname = info.gname = "root"
    return info


def _open(path: Path, stream: BinaryIO) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=stream, mode="r|")
    except tarfile.TarError:
        raise UsageError(f"{path} is not a kfbox lite bundle (not a tar archive)",
                         fix="give the .tar file that `kfbox bundle` wrote") from None


def read_manifest(path: Path) -> Manifest:
    """The bundle's manifest, read from the archive's first members (nothing else is read)."""
    if not path.is_file():
        raise UsageError(f"no bundle file at {str(path)!r}",
                         fix="give the .tar file that `kfbox bundle` wrote")
    with path.open("rb") as handle, _open(path, handle) as tar:
        try:
            for _, info in zip(FIRST, tar, strict=False):
                if info.name == MANIFEST and info.isfile():
                    member = tar.extractfile(info)
                    return parse_manifest(member.read() if member else b"", str(path))
        except (tarfile.TarError, EOFError):
            pass
    raise UsageError(f"{path} is not a kfbox lite bundle (no {MANIFEST} at its start)",
                     fix="give the .tar file that `kfbox bundle` wrote")


class _Reading:
    """A read-only file that hashes every byte read: the archive's sha256 in the same pass
    that checks its members."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.digest = hashlib.sha256()
        self.done = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.digest.update(data)
        self.done += len(data)
        return data

    def finish(self) -> str:
        while self.read(CHUNK):
            pass
        return self.digest.hexdigest()


def verify(path: Path, manifest: Manifest, *, keep: Callable[[str], bool] = lambda _: False,
           into: Path | None = None, update: Callable[[str], None] = lambda _: None) -> str:
    """Check every member of the bundle against the manifest in one pass (sizes, sha256s,
    nothing missing, nothing added) and return the whole file's sha256. Members `keep` names
    are written under `into` as they are read; on a failure the caller removes `into`.
    UsageError naming the first bad member."""
    total = path.stat().st_size
    seen: set[str] = set()
    name = ""
    with path.open("rb") as handle:
        reading = _Reading(handle)
        try:
            with _open(path, reading) as tar:  # type: ignore[arg-type]
                for info in tar:
                    name = info.name
                    update(f"{reading.done * 100 // max(total, 1)}% ({name})")
                    if name == MANIFEST:
                        continue
                    expected = manifest.members.get(name)
                    if expected is None or not info.isfile():
                        raise UsageError(f"{path}: member {name} is not in its manifest: the "
                                         "bundle was modified", fix=COPY_AGAIN)
                    sink = into / name if into is not None and keep(name) else None
                    digest = _hash_member(tar, info, sink)
                    if info.size != expected.size or digest != expected.sha256:
                        raise UsageError(f"{path}: member {name} is corrupt (sha256 "
                                         f"{digest[:16]}…, the manifest says "
                                         f"{expected.sha256[:16]}…)", fix=COPY_AGAIN)
                    seen.add(name)
        except (tarfile.TarError, EOFError):
            raise UsageError(f"{path}: member {name or 'one'} is truncated (the file ends "
                             "early)", fix=COPY_AGAIN) from None
        missing = sorted(set(manifest.members) - seen)
        if missing:
            raise UsageError(f"{path}: member {missing[0]} is missing"
                             + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                             fix=COPY_AGAIN)
        return reading.finish()


def _hash_member(tar: tarfile.TarFile, info: tarfile.TarInfo, sink: Path | None) -> str:
    digest = hashlib.sha256()
    source = tar.extractfile(info)
    if source is None:
        return digest.hexdigest()
    out: BinaryIO | None = None
    if sink is not None:
        sink.parent.mkdir(parents=True, exist_ok=True)
        out = sink.open("wb")
    try:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            if out is not None:
                out.write(chunk)
    finally:
        if out is not None:
            out.close()
    return digest.hexdigest()


def stream_member(path: Path, name: str, expected: Member,
                  update: Callable[[int], None] = lambda _: None) -> Iterator[bytes]:
    """The member's bytes in chunks, straight from the archive (seeking past the others), its
    sha256 checked again at the end: UsageError when the file changed since it was verified."""
    digest = hashlib.sha256()
    done = 0
    with tarfile.open(path, mode="r:") as tar:
        source = tar.extractfile(tar.getmember(name))
        if source is None:
            raise UsageError(f"{path}: member {name} is missing", fix=COPY_AGAIN)
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            update(done)
            yield chunk
    if digest.hexdigest() != expected.sha256:
        raise UsageError(f"{path}: member {name} changed while it was loaded", fix=COPY_AGAIN)
