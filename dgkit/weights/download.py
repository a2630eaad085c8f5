"""Downloading the official weights: Google Drive through gdown, VGG-Face over resumable HTTP.

:func:`download_weights` fetches what is missing, verifies every file and places it with
:mod:`dgkit.weights.placing`. :func:`http_download` continues a partial ``.part`` file with Range requests
(within one call and across calls); :func:`gdown_fetch` wraps gdown.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from .. import checkpoint
from ..errors import DgkitError, DownloadError, WeightsError
from .hashes import CHUNK
from .install import install_from_zip
from .manifest import DG_GDRIVE_ID, DG_GDRIVE_URL, OFFICIAL_FILES, VGG_FACE_URL
from .placing import default_destination, is_valid, place, refuse_synthetic_destination

__all__ = ["download_weights", "gdown_fetch", "http_download"]

def gdown_fetch(file_id: str, output_path: str | os.PathLike, *, quiet: bool = False) -> Path:
    """Download a Google Drive file with gdown (resumes a previous partial download)."""
    import gdown

    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    options = {"id": file_id, "output": str(output_path), "quiet": quiet, "resume": True}
    if "retries" in inspect.signature(gdown.download).parameters:  # gdown >= 6; pyproject allows 5.x
        options["retries"] = 3
    result = gdown.download(**options)
    if not result:
        raise DownloadError(f"gdown could not download Google Drive file {file_id}.")
    return Path(result)


class _Interrupted(Exception):
    """A transfer stopped before the end; the .part file keeps what arrived."""


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes START-END/TOTAL`` or ``bytes */TOTAL`` -> (start, total); None where absent."""
    match = re.match(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return start, total


def _hand_download_hint(url: str) -> str:
    return (
        f"Download it by hand in a browser from {url} and run `dgkit weights install PATH` "
        f"(or dgkit.weights.install_weights(PATH)); see weights/README.md."
    )


def _http_fetch_once(url: str, part: Path, *, progress: bool, timeout: float) -> None:
    """One HTTP GET into ``part``, continuing it with a Range request when it already has bytes."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "dgkit (python urllib)"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: complete, or the server's file changed
            _start, total = _parse_content_range(exc.headers.get("Content-Range"))
            if total == have:
                return
            part.unlink()
            raise _Interrupted("the server refused to resume the partial file; starting again") from None
        raise DownloadError(
            f"{url} answered HTTP {exc.code} {exc.reason}. The file may have moved or the server may be down. "
            + _hand_download_hint(url)
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"could not connect to {url} ({reason}). Check the internet connection (and proxy settings: "
            "$HTTP_PROXY/$HTTPS_PROXY). " + _hand_download_hint(url)
        ) from None

    with response:
        total: int | None = None
        if have and response.status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"))
            if start != have:  # an unexpected range: start again rather than splice wrong bytes
                part.unlink()
                raise _Interrupted(f"the server resumed at byte {start}, not {have}; starting again")
        else:
            have = 0  # the server ignored the Range header and sends everything
        if total is None and response.headers.get("Content-Length"):
            total = have + int(response.headers["Content-Length"])
        from tqdm.auto import tqdm

        with open(part, "ab" if have else "wb") as out, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name.removesuffix(".part"), disable=not progress,
        ) as bar:
            if have:
                out.truncate(have)
            while True:
                try:
                    block = response.read(CHUNK)
                except (OSError, EOFError, ValueError) as exc:  # reset, timeout, IncompleteRead
                    raise _Interrupted(str(exc) or type(exc).__name__) from None
                if not block:
                    break
                out.write(block)
                bar.update(len(block))
    got = part.stat().st_size
    if total is not None and got < total:
        raise _Interrupted(f"the connection closed after {got:,} of {total:,} bytes")
    if total is not None and got > total:
        part.unlink()
        raise DownloadError(f"{url} sent more bytes than announced; the partial file was deleted. Try again.")


def http_download(url: str, part: Path, *, progress: bool, retries: int, timeout: float = 60.0) -> None:
    """Download ``url`` into ``part`` (resumable). Interrupted transfers are resumed up to ``retries`` times.

    Raises:
        DownloadError: HTTP error, no connection, or still interrupted after the retries (``part`` is then
            kept, so calling again resumes).
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    while True:
        try:
            _http_fetch_once(url, part, progress=progress, timeout=timeout)
            return
        except _Interrupted as exc:
            if attempt < retries:
                attempt += 1
                continue
            kept = part.stat().st_size if part.exists() else 0
            raise DownloadError(
                f"the download of {url} was interrupted ({exc}). {kept:,} bytes are kept in {part}; run the same "
                f"command again to resume. " + _hand_download_hint(url)
            ) from None


def download_weights(
    dest: str | os.PathLike | None = None,
    *,
    gdrive: Callable[[str, Path], str | os.PathLike] | None = None,
    vgg_url: str = VGG_FACE_URL,
    dg_file_id: str = DG_GDRIVE_ID,
    progress: bool = True,
    force: bool = False,
    retries: int = 3,
) -> dict[str, Path]:
    """Download the official weights into ``dest`` in the official layout (needs internet).

    The DG zip (RFG + IDSG) comes from Google Drive through ``gdrive(file_id, output_path) -> path``
    (default: gdown); VGG-Face from ``vgg_url`` over HTTP, resumable: a partial ``vgg_face_dag.pth.part``
    is continued with a Range request, by later attempts and by the next call. Every file is verified with
    :func:`load_checkpoint` before it is moved into place; its size and sha256 go to ``dest/CHECKSUMS.json``.
    Files already there and valid are kept (and not downloaded again) unless ``force``.

    Args:
        dest: weights folder; default: the first writable of ``$DGKIT_WEIGHTS``, the repository's
            ``weights/``, ``cache_dir()/weights``.
        gdrive: Google Drive downloader (tests pass a fake).
        vgg_url, dg_file_id: sources.
        progress: show progress bars and messages.
        force: replace valid files too.
        retries: how often an interrupted VGG-Face transfer is resumed within this call.

    Returns:
        ``{"rfg": Path, "idsg": Path, "vgg_face": Path}`` of the files in ``dest``.

    Raises:
        DownloadError: listing each file that failed, the URL, and what to do. Files that did succeed stay
            in place.
    """
    root = Path(dest).expanduser() if dest is not None else default_destination()
    refuse_synthetic_destination(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the weights folder {root} ({exc}). Pass another dest.") from None

    def say(text: str) -> None:
        if progress:
            print(text, flush=True)

    result: dict[str, Path] = {}
    todo = []
    for name in checkpoint.KINDS:
        final = root / OFFICIAL_FILES[name]
        if not force and final.is_file() and is_valid(final, name):
            say(f"{OFFICIAL_FILES[name]}: already present and valid, kept")
            result[name] = final
        else:
            todo.append(name)

    failures: list[str] = []
    dg_names = [name for name in ("rfg", "idsg") if name in todo]
    if dg_names:
        archive = root / ".downloads" / "DG_checkpoints.zip"
        fetch = gdrive or functools.partial(gdown_fetch, quiet=not progress)
        try:
            say(f"downloading the DG checkpoints zip from {DG_GDRIVE_URL} ...")
            got = Path(fetch(dg_file_id, archive) or archive)
            placed, absent = install_from_zip(got, root, dg_names, force=force, source=DG_GDRIVE_URL)
            result.update(placed)
            for name in placed:
                say(f"{OFFICIAL_FILES[name]}: verified and placed")
            if absent:
                failures.append(
                    f"the DG zip from {DG_GDRIVE_URL} holds no {', '.join(PurePosixPath(OFFICIAL_FILES[n]).name for n in absent)}"
                    ". Google Drive may have served another file; download it by hand and use `dgkit weights install`."
                )
            if got.resolve() == archive.resolve():
                got.unlink(missing_ok=True)  # unpacked (or useless): do not keep 240 MB around
        except Exception as exc:  # noqa: BLE001 - any failure of this source is reported with the others
            detail = str(exc) if isinstance(exc, DgkitError) else f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(OSError):
                if archive.is_file() and not isinstance(exc, DownloadError):
                    archive.unlink()  # a bad zip would poison a resumed download
            failures.append(
                f"DG checkpoints (RFG + IDSG) from {DG_GDRIVE_URL} (file id {dg_file_id}): {detail}\n"
                f"    What to do: open that link in a browser (Google Drive sometimes refuses scripted downloads "
                f"when a file is popular), save the zip, and run `dgkit weights install PATH_TO_ZIP`."
            )
        with contextlib.suppress(OSError):
            (root / ".downloads").rmdir()

    if "vgg_face" in todo:
        final = root / OFFICIAL_FILES["vgg_face"]
        part = final.with_name(final.name + ".part")
        try:
            say(f"downloading VGG-Face from {vgg_url} ...")
            http_download(vgg_url, part, progress=progress, retries=retries)
            try:
                result["vgg_face"] = place(part, root, "vgg_face", move=True, source=vgg_url, force=force)
            except WeightsError as exc:
                part.unlink(missing_ok=True)  # complete but wrong: resuming it cannot help
                raise DownloadError(
                    f"the file downloaded from {vgg_url} does not verify, so nothing was placed: {exc}"
                ) from None
            say(f"{OFFICIAL_FILES['vgg_face']}: verified and placed")
        except DownloadError as exc:
            failures.append(f"VGG-Face from {vgg_url}: {exc}")

    if failures:
        done = ", ".join(OFFICIAL_FILES[n] for n in result) or "none"
        raise DownloadError(
            f"download into {root} incomplete (in place and valid: {done}).\n  - " + "\n  - ".join(failures)
        )
    return {name: result[name] for name in checkpoint.KINDS}
