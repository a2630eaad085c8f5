"""One place that turns a device name into a usable ``torch.device`` (or a clear :class:`DeviceError`).

``resolve_device("auto")`` picks CUDA, then Apple's MPS, then the CPU. Every other name is checked against
what this torch installation can actually use, so a typo or a missing GPU is reported in one line that says
what to pass instead, rather than as an AssertionError or RuntimeError from deep inside torch.
"""

from __future__ import annotations

from .errors import DeviceError

__all__ = ["available_devices", "resolve_device"]


def available_devices() -> list[str]:
    """Device names usable here, e.g. ``["cpu"]`` or ``["cpu", "cuda", "cuda:0", "cuda:1"]``."""
    import torch

    names = ["cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    return names


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(device) -> "torch.device":  # noqa: F821 (torch is imported lazily)
    """Return ``device`` as a ``torch.device`` that exists here; raise DeviceError otherwise.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, or a ``torch.device``.

    Raises:
        DeviceError: unknown name, or a device this installation/machine does not have (the message lists
            the devices that are available).
    """
    import torch

    if isinstance(device, str) and device.strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu")
    choices = ", ".join(["auto", *available_devices()])
    try:
        dev = device if isinstance(device, torch.device) else torch.device(str(device).strip())
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"unknown device {device!r}; use one of: {choices}.") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch is a CPU-only build" if torch.version.cuda is None
                   else "no CUDA GPU is visible (check the driver and CUDA_VISIBLE_DEVICES)")
            raise DeviceError(f"device {str(dev)!r} is not available: {why}. Use --device cpu (Python: "
                              f"device='cpu'), or one of: {choices}.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device {str(dev)!r} does not exist: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s). Use one of: {choices}.")
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise DeviceError(f"device 'mps' (Apple GPU) is not available on this machine or torch build. "
                              f"Use one of: {choices}.")
        return dev
    raise DeviceError(f"device {str(dev)!r} is not supported by dgkit; use one of: {choices}.")
