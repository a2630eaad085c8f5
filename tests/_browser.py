"""What the browser tests share: JupyterLab on 127.0.0.1, headless Chromium (Playwright, the system browser).

    with running_lab(tmp_path, request, {"app.ipynb": CELLS}) as lab:      # skips when Chromium/playwright lack
        with notebook_page(lab, "app.ipynb", "--use-fake-device-for-media-stream") as page:
            ...                                                             # the notebook is open and running

Screenshots go to ``artifacts/browser/``; a failing block leaves ``<notebook>_failure.png`` there.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = os.environ.get("DGKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


# A short FNV-1a hash of the bytes behind an <img> (ipywidgets.Image shows a blob: URL of its PNG value).
JS_IMAGE_HASH = """async (img) => {
  const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  let h = 0x811c9dc5;
  for (const b of bytes) { h ^= b; h = Math.imul(h, 0x01000193) >>> 0; }
  return bytes.length + ":" + h.toString(16);
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def requirements() -> str | None:
    """None when everything is there, else why the test is skipped."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (run scripts/install_browser.sh)"
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        return f"Chromium not found at {CHROMIUM} (run scripts/install_browser.sh or set DGKIT_CHROMIUM)"
    for module in ("jupyterlab", "ipywidgets", "anywidget"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed"
    return None


def write_notebook(path: Path, cells: list[str]) -> None:
    """A notebook of code ``cells`` at ``path``, with the python3 kernelspec."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, path)



class Lab:
    """A JupyterLab server on 127.0.0.1 with its own token, root, settings and runtime folders."""

    def __init__(self, root: Path, home: Path, env: dict[str, str]):
        self.port = free_port()
        self.token = "dgkit-" + os.urandom(8).hex()
        self.url = f"http://127.0.0.1:{self.port}"
        for sub in ("settings", "workspaces", "runtime", "config"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        env = {**env, "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_CONFIG_DIR": str(home / "config"),
               "PYTHONUNBUFFERED": "1"}
        self.log_path = home / "jupyterlab.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={home / 'settings'}",
             f"--LabApp.workspaces_dir={home / 'workspaces'}", "--LabApp.news_url=",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],  # containers, CI
            cwd=root, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def _get(self, path: str, method: str = "GET", timeout: float = 5.0, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", method=method, data=data,
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self._get("/api/status")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def start_kernel(self, notebook: str) -> None:
        """Start the notebook's python3 kernel session before the page opens (JupyterLab then attaches to it
        instead of asking which kernel to use when its own start is slow)."""
        status, _ = self._get("/api/sessions", method="POST", timeout=60,
                              body={"path": notebook, "name": notebook, "type": "notebook",
                                    "kernel": {"name": "python3"}})
        assert status in (200, 201), f"could not start a kernel: HTTP {status}"

    def log_tail(self, n: int = 3000) -> str:
        self._log.flush()
        return self.log_path.read_bytes()[-n:].decode(errors="replace")

    def stop(self) -> None:
        """Ask the server to shut down (it stops its kernels), then make sure the process is gone."""
        try:
            self._get("/api/shutdown", method="POST")
        except OSError:
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


def open_notebook(browser, lab: Lab, name: str):
    """A new page with the notebook open, its kernel idle, and Run All Cells started."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    # JupyterLab may ask for a kernel (when its session starts slowly) or about news: answer both
    kernel_dialog = page.locator(".jp-Dialog").filter(has_text="Select Kernel")
    page.add_locator_handler(kernel_dialog, lambda d: d.get_by_role("button", name="Select Kernel").click())
    news = page.get_by_role("alert").filter(has_text="Jupyter news")
    page.add_locator_handler(news, lambda n: n.get_by_role("button", name="No", exact=True).click())
    page.goto(f"{lab.url}/lab/tree/{name}?token={lab.token}", wait_until="domcontentloaded")
    expect(page.locator(".jp-Notebook .jp-Cell").first).to_be_visible(timeout=60_000)
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(1, timeout=60_000)
    run_all_cells(page)
    return page


def run_all_cells(page, attempts: int = 3) -> None:
    """Run > Run All Cells, retried until the first cell's prompt shows it ran or is running.

    A click that lands while JupyterLab is still settling (the notebook not yet the active widget) is
    ignored by JupyterLab, so the click is checked and repeated rather than trusted."""
    from playwright.sync_api import expect

    prompt = page.locator(".jp-Notebook .jp-Cell .jp-InputPrompt").first
    for attempt in range(attempts):
        page.locator(".jp-Notebook .jp-Cell").first.click()  # make the notebook the active widget
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        try:
            expect(prompt).to_have_text(re.compile(r"\[(\*|\d+)\]"), timeout=15_000)
            return
        except AssertionError:
            if attempt == attempts - 1:
                raise


@contextlib.contextmanager
def running_lab(tmp_path: Path, request: pytest.FixtureRequest, notebooks: dict[str, list[str]]) -> Iterator[Lab]:
    """A JupyterLab server whose root holds ``notebooks`` (name -> code cells), the kernel on the synthetic
    weights ($DGKIT_WEIGHTS); the test is skipped (with the reason) when the browser or Playwright is missing."""
    reason = requirements()
    if reason:
        pytest.skip(reason)
    synthetic_weights = request.getfixturevalue("synthetic_weights")  # only when the browser test can run
    root = tmp_path / "root"
    root.mkdir()
    for name, cells in notebooks.items():
        write_notebook(root / name, cells)
    server = Lab(root, tmp_path / "jupyter", {**os.environ, "DGKIT_WEIGHTS": str(synthetic_weights)})
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def notebook_page(lab: Lab, notebook: str, *chromium_args: str):
    """Headless Chromium (``CHROMIUM_ARGS`` plus ``chromium_args``) with ``notebook`` open and Run All Cells
    started on a kernel started beforehand; yields the page. On an error a full-page screenshot
    ``<notebook stem>_failure.png`` is saved; the browser is always closed."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    lab.start_kernel(notebook)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *chromium_args])
        page = None
        try:
            page = open_notebook(browser, lab, notebook)
            yield page
        except Exception:
            if page is not None:
                page.screenshot(path=str(ARTIFACTS / f"{Path(notebook).stem}_failure.png"), full_page=True)
            raise
        finally:
            browser.close()
