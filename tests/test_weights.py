"""dgkit.weights: search order, status, downloads (local HTTP server, fake Google Drive), installs, CLI.

No test touches the internet: downloads come from a server on 127.0.0.1 and a fake gdrive callable.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import socket
import sys
import threading
import types
import zipfile
from pathlib import Path

import pytest
import torch

import dgkit.checkpoint
import dgkit.weights as W
import dgkit.weights.download
import dgkit.weights.synthetic
from dgkit.weights.download import gdown_fetch, http_download
from dgkit.cli import main
from dgkit.errors import (
    CheckpointError,
    DownloadError,
    WeightsError,
    WeightsNotFoundError,
)

RFG, IDSG, VGG = (W.OFFICIAL_FILES[k] for k in ("rfg", "idsg", "vgg_face"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _touch(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.fixture(scope="module")
def other_idsg(tmp_path_factory) -> Path:
    """A valid IDSG file that differs from the seed-1234 one (synthetic seed 5, 15 MB)."""
    path = tmp_path_factory.mktemp("idsg5") / "30000_nets_ema.ckpt"
    torch.save(W.synthetic_state("idsg", 5), path)
    return path


# --- a small HTTP server with Range support -----------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes[path]`` (bytes or a Path). ``server.drops[path] = n``: the next n full (non-range)
    responses stop after half of the body and close the connection."""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        server = self.server
        server.log.append((self.path, self.headers.get("Range")))
        body = server.routes.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        size = body.stat().st_size if isinstance(body, Path) else len(body)
        start, status = 0, 200
        header = self.headers.get("Range")
        if header and not server.ignore_range:
            start = int(header.split("=")[1].split("-")[0])
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Length", str(size - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.end_headers()
        stop = size
        if status == 200 and server.drops.get(self.path, 0) > 0:
            server.drops[self.path] -= 1
            stop = size // 2
        self._send(body, start, stop)
        if stop < size:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # the client sees the connection end early
            self.close_connection = True

    def _send(self, body, start, stop):
        if isinstance(body, Path):
            with open(body, "rb") as handle:
                handle.seek(start)
                while start < stop:
                    block = handle.read(min(1 << 20, stop - start))
                    self.wfile.write(block)
                    start += len(block)
        else:
            self.wfile.write(body[start:stop])


@pytest.fixture
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.routes, server.drops, server.log, server.ignore_range = {}, {}, [], False
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


def _refused_url() -> str:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/vgg_face_dag.pth"


def _fake_gdrive(files: dict[str, Path], top: str = "DG_pretrained/", log: list | None = None):
    """A gdrive(file_id, output_path) stand-in that writes a zip with ``files`` below a top folder."""

    def fetch(file_id, output_path):
        if log is not None:
            log.append(file_id)
        Path(output_path).parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(output_path, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr(top, "")
            for member, source in files.items():
                archive.write(source, top + member)
        return output_path

    return fetch


# --- the package ----------------------------------------------------------------------------------------------
def test_package_exports_and_has_no_import_cycle():
    import ast
    import importlib

    import dgkit.pipeline

    package = Path(W.__file__).parent
    graph = {}
    for module in sorted(package.glob("*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:  # from .x import ... / from . import x
                deps |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        graph[module.stem] = deps - {module.stem}
        importlib.import_module(f"dgkit.weights.{module.stem}" if module.stem != "__init__" else "dgkit.weights")

    def visit(name, stack):
        assert name not in stack, "import cycle: " + " -> ".join([*stack, name])
        for dep in graph.get(name, ()):
            visit(dep, [*stack, name])

    for name in graph:
        visit(name, [])
    assert W.__all__ and all(not n.startswith("_") and hasattr(W, n) for n in W.__all__)
    assert dgkit.pipeline.WeightsInfo is W.WeightsInfo and W.TRAINED_MARKER == "DGKIT_TRAINED.json"
    # one list of official files: the packaged tensor manifest's paths
    assert W.OFFICIAL_FILES == {k: v["path"] for k, v in dgkit.checkpoint.manifest()["files"].items()}


def test_repo_weights_variable_is_read_at_each_call(isolated_weights, monkeypatch):
    other = isolated_weights / "other-repo"
    other.mkdir()
    _touch(other / RFG)
    monkeypatch.setenv("DGKIT_REPO_WEIGHTS", str(other))
    assert W.repo_weights_dir() == other and other in W.weights_search_dirs()
    with pytest.raises(WeightsNotFoundError, match="other-repo"):
        W.locate_weights()  # rfg is found there, the other two are missing
    with pytest.raises(WeightsError, match="refusing"):
        W.make_synthetic_weights(other)  # protected like the repository's weights/ folder
    monkeypatch.delenv("DGKIT_REPO_WEIGHTS")
    assert W.repo_weights_dir() == Path(W.__file__).resolve().parents[2] / "weights"


# --- search order -------------------------------------------------------------------------------------------
def test_search_order_and_env_vars(isolated_weights, monkeypatch):
    env_a, env_b = isolated_weights / "env-a", isolated_weights / "env-b"
    monkeypatch.setenv("DGKIT_WEIGHTS", os.pathsep.join([str(env_a), str(env_b)]))
    repo = isolated_weights / "repo-weights"
    assert W.weights_search_dirs() == [env_a, env_b, repo, isolated_weights / "cache" / "weights"]
    assert W.weights_search_dirs(env_b) == [env_b]  # an explicit folder is the only one

    monkeypatch.delenv("DGKIT_WEIGHTS")
    monkeypatch.delenv("DGKIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(isolated_weights / "xdg"))
    assert W.weights_search_dirs()[-1] == isolated_weights / "xdg" / "dgkit" / "weights"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(isolated_weights / "home"))
    assert W.weights_search_dirs()[-1] == isolated_weights / "home" / ".cache" / "dgkit" / "weights"

    shutil.rmtree(repo)  # the repository folder is only searched when it exists
    assert repo not in W.weights_search_dirs()


def test_locate_takes_each_file_from_the_first_folder_that_has_it(isolated_weights, monkeypatch):
    env = isolated_weights / "env"
    monkeypatch.setenv("DGKIT_WEIGHTS", str(env))
    repo, cache = isolated_weights / "repo-weights", isolated_weights / "cache" / "weights"
    _touch(env / IDSG)
    _touch(repo / IDSG)
    _touch(repo / RFG)
    _touch(cache / RFG)
    _touch(cache / VGG)
    assert W.locate_weights() == {"rfg": repo / RFG, "idsg": env / IDSG, "vgg_face": cache / VGG}
    with pytest.raises(WeightsNotFoundError):
        W.locate_weights(env)  # only that folder: rfg and vgg are missing there


def test_locate_error_lists_missing_files_folders_and_remedies(isolated_weights, monkeypatch):
    monkeypatch.setenv("DGKIT_WEIGHTS", str(isolated_weights / "env"))
    repo = isolated_weights / "repo-weights"
    _touch(repo / IDSG)
    _touch(repo / "DG_pretrained" / RFG)  # unpacked one folder too deep
    with pytest.raises(WeightsNotFoundError) as info:
        W.locate_weights()
    message = str(info.value)
    assert RFG in message and VGG in message and IDSG not in message.split("Searched")[0]
    for folder in W.weights_search_dirs():
        assert str(folder) in message
    assert "does not exist" in message  # $DGKIT_WEIGHTS folder
    assert "dgkit weights download" in message
    assert W.DG_GDRIVE_URL in message and W.VGG_FACE_URL in message
    assert "dgkit weights install" in message
    assert f"Found {repo / 'DG_pretrained' / RFG}" in message


# --- status -------------------------------------------------------------------------------------------------
def test_status_of_the_synthetic_folder_and_its_cache(synthetic_weights, isolated_weights, monkeypatch):
    statuses = W.weights_status(synthetic_weights)
    assert [s.name for s in statuses] == ["rfg", "idsg", "vgg_face"]
    for status in statuses:
        assert status.loads_ok and status.path == synthetic_weights / status.relative_path
        assert status.size == status.path.stat().st_size
        assert "synthetic" in status.message
    assert statuses[1].sha256 == _sha256(synthetic_weights / IDSG)

    # a second call neither hashes nor loads again
    def fail(*args, **kwargs):
        raise AssertionError("should have been cached")

    monkeypatch.setattr(hashlib, "sha256", fail)
    monkeypatch.setattr(dgkit.checkpoint, "load_checkpoint", fail)
    assert W.weights_status(synthetic_weights) == statuses
    assert json.dumps([s.to_dict() for s in statuses])  # JSON-friendly


def test_status_rehashes_a_changed_file_and_reports_problems(isolated_weights, other_idsg):
    folder = isolated_weights / "w"
    idsg = folder / IDSG
    _touch(idsg)
    shutil.copyfile(other_idsg, idsg)
    first = W.weights_status(folder)
    assert [s.loads_ok for s in first] == [False, True, False]
    assert "not found" in first[0].message and first[0].path is None
    data = idsg.read_bytes()
    idsg.write_bytes(data[: len(data) // 3])  # truncated: size and mtime change
    second = W.weights_status(folder)[1]
    assert not second.loads_ok and "truncated" in second.message
    assert second.sha256 == hashlib.sha256(data[: len(data) // 3]).hexdigest()


# --- the HTTP transfer --------------------------------------------------------------------------------------
PAYLOAD = os.urandom(3_000_000)


def test_http_download_and_resume_after_a_dropped_connection(http_server, tmp_path):
    http_server.routes["/f.bin"] = PAYLOAD
    http_server.drops["/f.bin"] = 1
    part = tmp_path / "f.bin.part"
    with pytest.raises(DownloadError, match="run the same command again to resume") as info:
        http_download(http_server.url + "/f.bin", part, progress=False, retries=0)
    assert "1,500,000 bytes are kept" in str(info.value)
    assert part.read_bytes() == PAYLOAD[:1_500_000]
    http_download(http_server.url + "/f.bin", part, progress=False, retries=0)  # the second call resumes
    assert part.read_bytes() == PAYLOAD
    assert http_server.log == [("/f.bin", None), ("/f.bin", "bytes=1500000-")]


def test_http_download_retries_within_one_call(http_server, tmp_path):
    http_server.routes["/f.bin"] = PAYLOAD
    http_server.drops["/f.bin"] = 1
    part = tmp_path / "f.bin.part"
    http_download(http_server.url + "/f.bin", part, progress=False, retries=2)
    assert part.read_bytes() == PAYLOAD and len(http_server.log) == 2


def test_http_download_restarts_when_the_server_ignores_range(http_server, tmp_path):
    http_server.routes["/f.bin"] = PAYLOAD
    http_server.ignore_range = True
    part = _touch(tmp_path / "f.bin.part", b"stale bytes from elsewhere")
    http_download(http_server.url + "/f.bin", part, progress=False, retries=0)
    assert part.read_bytes() == PAYLOAD


def test_http_download_of_an_already_complete_part(http_server, tmp_path):
    http_server.routes["/f.bin"] = PAYLOAD
    part = _touch(tmp_path / "f.bin.part", PAYLOAD)
    http_download(http_server.url + "/f.bin", part, progress=False, retries=0)  # 416: nothing left
    assert part.read_bytes() == PAYLOAD


# --- download_weights ---------------------------------------------------------------------------------------
@pytest.mark.slow  # moves ~1.6 GB through a local server and the disk: about 6 s
def test_download_end_to_end_with_resume(synthetic_weights, http_server, isolated_weights):
    dest = isolated_weights / "dest"
    http_server.routes["/vgg_face_dag.pth"] = synthetic_weights / VGG
    http_server.drops["/vgg_face_dag.pth"] = 1
    drive_log = []
    gdrive = _fake_gdrive({RFG: synthetic_weights / RFG, IDSG: synthetic_weights / IDSG}, log=drive_log)
    url = http_server.url + "/vgg_face_dag.pth"

    with pytest.raises(DownloadError, match="resume") as info:  # the transfer breaks halfway
        W.download_weights(dest, gdrive=gdrive, vgg_url=url, progress=False, retries=0)
    assert url in str(info.value)
    assert (dest / RFG).is_file() and (dest / IDSG).is_file()  # the zip (nested folder) was unpacked
    assert not (dest / VGG).exists() and (dest / (VGG + ".part")).is_file()

    placed = W.download_weights(dest, gdrive=gdrive, vgg_url=url, progress=False, retries=0)
    assert placed == {"rfg": dest / RFG, "idsg": dest / IDSG, "vgg_face": dest / VGG}
    assert drive_log == [W.DG_GDRIVE_ID]  # not fetched again: already valid
    assert http_server.log[-1][1] == f"bytes={(synthetic_weights / VGG).stat().st_size // 2}-"
    for rel in (RFG, IDSG, VGG):
        assert (dest / rel).read_bytes() == (synthetic_weights / rel).read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == ["CHECKSUMS.json", "expr", "expr_lm", "vgg_face_dag.pth"]
    record = json.loads((dest / "CHECKSUMS.json").read_text())["files"]
    assert record[VGG]["sha256"] == W.file_sha256(synthetic_weights / VGG)
    assert record[VGG]["size"] == (dest / VGG).stat().st_size and record[VGG]["source"] == url

    requests = len(http_server.log)
    W.download_weights(dest, gdrive=gdrive, vgg_url=url, progress=False)
    assert len(http_server.log) == requests and drive_log == [W.DG_GDRIVE_ID]  # nothing downloaded again


@pytest.fixture
def dest_with_dg(synthetic_weights, isolated_weights) -> Path:
    """A weights folder that already holds valid RFG and IDSG files (symlinks to the synthetic ones)."""
    dest = isolated_weights / "dest"
    for rel in (RFG, IDSG):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(synthetic_weights / rel, dest / rel)
    return dest


def test_corrupted_download_is_not_placed(dest_with_dg, http_server, synthetic_weights):
    http_server.routes["/vgg_face_dag.pth"] = synthetic_weights / IDSG  # a valid torch file, but the wrong one
    url = http_server.url + "/vgg_face_dag.pth"
    with pytest.raises(DownloadError, match="does not verify, so nothing was placed") as info:
        W.download_weights(dest_with_dg, vgg_url=url, progress=False, gdrive=None)
    assert "missing" in str(info.value) and url in str(info.value)
    assert not (dest_with_dg / VGG).exists() and not (dest_with_dg / (VGG + ".part")).exists()


@pytest.mark.parametrize("problem", ["404", "refused"])
def test_unreachable_sources(dest_with_dg, http_server, problem):
    url = http_server.url + "/missing.pth" if problem == "404" else _refused_url()
    with pytest.raises(DownloadError) as info:
        W.download_weights(dest_with_dg, vgg_url=url, progress=False)
    message = str(info.value)
    assert url in message and "dgkit weights install" in message
    assert ("HTTP 404" if problem == "404" else "could not connect") in message
    assert not (dest_with_dg / VGG).exists()


def test_google_drive_failures(synthetic_weights, isolated_weights, http_server):
    http_server.routes["/vgg_face_dag.pth"] = b"not weights"
    dest = isolated_weights / "dest"

    def html_page(file_id, output_path):
        _touch(Path(output_path), b"<!DOCTYPE html><html>Google Drive - Quota exceeded</html>")
        return output_path

    def offline(file_id, output_path):
        raise ConnectionError("no route to host")

    for gdrive, phrase in ((html_page, "HTML page"), (offline, "no route to host")):
        with pytest.raises(DownloadError) as info:
            W.download_weights(dest, gdrive=gdrive, vgg_url=http_server.url + "/vgg_face_dag.pth", progress=False)
        message = str(info.value)
        assert phrase in message and W.DG_GDRIVE_URL in message and "dgkit weights install" in message
        assert "VGG-Face" in message  # the VGG failure is reported too
    assert not (dest / RFG).exists() and not (dest / ".downloads").exists()


def test_gdown_wrapper(tmp_path, monkeypatch):
    calls = []

    def download(id=None, output=None, quiet=False, resume=False):  # gdown 5.x: no retries argument
        calls.append((id, output, quiet, resume))
        return None if id == "gone" else output

    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download=download))
    out = tmp_path / "sub" / "DG.zip"
    assert gdown_fetch("abc", out, quiet=True) == out and out.parent.is_dir()
    assert calls == [("abc", str(out), True, True)]
    with pytest.raises(DownloadError, match="gone"):
        gdown_fetch("gone", out)


def test_synthetic_folders_never_receive_official_files(synthetic_weights, isolated_weights, other_idsg, monkeypatch):
    def must_not_run(file_id, output_path):
        raise AssertionError("nothing may be downloaded into a synthetic folder")

    with pytest.raises(WeightsError, match="synthetic"):
        W.download_weights(synthetic_weights, gdrive=must_not_run, vgg_url=_refused_url(), progress=False)
    with pytest.raises(WeightsError, match="synthetic"):
        W.install_weights(other_idsg, synthetic_weights)
    dest = isolated_weights / "dest"
    for source in (synthetic_weights, synthetic_weights / IDSG):  # copies would pass for real weights
        with pytest.raises(WeightsError, match="synthetic random weights"):
            W.install_weights(source, dest)
    assert not dest.exists()
    monkeypatch.setenv("DGKIT_WEIGHTS", str(synthetic_weights))  # e.g. CI pointing dgkit at synthetic weights
    assert W.default_destination() == isolated_weights / "repo-weights"


# --- install_weights ----------------------------------------------------------------------------------------
def test_install_zip_folder_and_renamed_file(synthetic_weights, isolated_weights, other_idsg):
    downloads = isolated_weights / "downloads"
    zipped = downloads / "DG.zip"
    _fake_gdrive({IDSG: synthetic_weights / IDSG}, top="Some Folder/")(None, zipped)
    dest = isolated_weights / "dest"
    assert W.install_weights(zipped, dest) == {"idsg": dest / IDSG}
    assert zipped.is_file()  # the user's file stays
    assert _sha256(dest / IDSG) == _sha256(synthetic_weights / IDSG)
    assert W.install_weights(zipped, dest) == {"idsg": dest / IDSG}  # identical: fine, nothing changes

    # a different valid file is not replaced silently
    renamed = shutil.copyfile(other_idsg, downloads / "30000_nets_ema (1).ckpt")
    with pytest.raises(WeightsError, match="force=True"):
        W.install_weights(renamed, dest)
    other_zip = downloads / "other.zip"
    _fake_gdrive({IDSG: other_idsg})(None, other_zip)
    with pytest.raises(WeightsError, match="force=True"):
        W.install_weights(other_zip, dest)
    assert _sha256(dest / IDSG) == _sha256(synthetic_weights / IDSG)
    assert W.install_weights(renamed, dest, force=True) == {"idsg": dest / IDSG}  # recognised by content
    assert _sha256(dest / IDSG) == _sha256(other_idsg) and renamed.is_file()

    folder = downloads / "unpacked" / "deeper"
    _touch(folder / IDSG)
    shutil.copyfile(synthetic_weights / IDSG, folder / IDSG)
    dest2 = isolated_weights / "dest2"
    assert W.install_weights(downloads / "unpacked", dest2, move=True) == {"idsg": dest2 / IDSG}
    assert not (folder / IDSG).exists()  # moved, as asked
    assert json.loads((dest2 / "CHECKSUMS.json").read_text())["files"][IDSG]["sha256"] == _sha256(dest2 / IDSG)


def test_install_refuses_bad_files_and_places_nothing(isolated_weights):
    dest = isolated_weights / "dest"
    bad = _touch(isolated_weights / "vgg_face_dag.pth", b"<html>sign in</html>")
    with pytest.raises(CheckpointError, match="HTML"):
        W.install_weights(bad, dest)
    evil = isolated_weights / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../" + IDSG, b"whatever")
    with pytest.raises(WeightsError, match="refused"):
        W.install_weights(evil, dest)
    with pytest.raises(WeightsNotFoundError):
        W.install_weights(isolated_weights / "nothing-here", dest)
    assert not dest.exists() or not any(p.is_file() for p in dest.rglob("*"))
    assert bad.read_bytes() == b"<html>sign in</html>"


# --- command line -------------------------------------------------------------------------------------------
def test_cli_status(synthetic_weights, tmp_path, capsys):
    assert main(["weights", "status", "--dir", str(synthetic_weights)]) == 0
    out = capsys.readouterr().out
    assert "vgg_face" in out and "yes" in out and "All three weight files" in out
    assert W.file_sha256(synthetic_weights / RFG)[:16] in out

    assert main(["weights", "status", "--dir", str(synthetic_weights), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["loads_ok"] for r in rows] == [True, True, True]

    assert main(["weights", "status", "--dir", str(tmp_path / "empty")]) == 1
    out = capsys.readouterr().out
    assert out.count("NOT FOUND") == 3 and "dgkit weights download" in out


def test_cli_install_download_synthetic(isolated_weights, other_idsg, monkeypatch, capsys):
    dest = isolated_weights / "dest"
    assert main(["weights", "install", str(other_idsg), "--dest", str(dest)]) == 0
    assert (dest / IDSG).is_file() and "not in this install" in capsys.readouterr().out

    text = _touch(isolated_weights / "notes.txt", b"hello")
    assert main(["weights", "install", str(text), "--dest", str(dest)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dgkit: error:") and "Traceback" not in err

    def failing_download(dest=None, *, force=False):
        raise DownloadError("could not connect to example (offline)")

    monkeypatch.setattr(dgkit.weights.download, "download_weights", failing_download)
    assert main(["weights", "download", "--dest", str(dest)]) == 1
    assert "could not connect" in capsys.readouterr().err

    made = []
    monkeypatch.setattr(dgkit.weights.synthetic, "make_synthetic_weights", lambda d, seed=1234: made.append((d, seed)) or {})
    assert main(["weights", "synthetic", str(isolated_weights / "syn"), "--seed", "9"]) == 0
    assert made == [(str(isolated_weights / "syn"), 9)]
    assert main(["weights"]) == 2
