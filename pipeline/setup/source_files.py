"""Obtaining the challenge's source files, which the repository never contains.

They come from a local folder (``NORTHWIND_DATA_DIR``) or from the upstream
challenge repository, and are accepted only if their sha256 is the pinned one:
the tests and the documented results are about exactly these files.
"""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.core.files import sha256_file

UPSTREAM_URL = "https://raw.githubusercontent.com/techindicium/code-challenge/main/data/{name}"
PINNED_SHA256 = {
    "northwind.sql": "482f27528f8bc4eac65fe240ebc393fb9984991f215067ba3d47ce8a067d41d5",
    "order_details.csv": "f507c2f918918c3243455237622e4724ad8f261bef3a710cc4925941da2040e8",
}


def _check(path: Path, name: str, origin: str) -> None:
    """Refuse (and delete) a fetched file whose bytes are not the pinned ones; ``origin`` names where it came from."""
    actual = sha256_file(path)
    if actual != PINNED_SHA256[name]:
        path.unlink()
        raise PipelineError(f"{origin} has sha256 {actual}, expected {PINNED_SHA256[name]}: not the challenge's {name}")


def obtain_sources(destination: Path, local_dir: Path | None) -> list[Path]:
    """Put the pinned source files into ``destination``; skip those already there and intact."""
    destination.mkdir(parents=True, exist_ok=True)
    obtained = []
    for name in PINNED_SHA256:
        target = destination / name
        if target.is_file() and sha256_file(target) == PINNED_SHA256[name]:
            obtained.append(target)
            continue
        partial = target.with_name(f".{name}.partial")
        if local_dir is not None:
            source = local_dir / name
            if not source.is_file():
                raise PipelineError(f"{source} not found (NORTHWIND_DATA_DIR={local_dir})")
            shutil.copyfile(source, partial)
            origin = str(source)
        else:
            url = UPSTREAM_URL.format(name=name)
            try:
                with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
                    shutil.copyfileobj(response, out)
            except OSError as exc:
                raise PipelineError(
                    f"cannot download {url} ({exc}); set NORTHWIND_DATA_DIR to a folder holding {name}"
                ) from exc
            origin = url
        _check(partial, name, origin)
        partial.replace(target)
        obtained.append(target)
    return obtained
