"""dgkit's exception classes.

Every mistake a user can make (a missing file, a wrong shape, a photo without a face) raises one of these,
with a message that says what happened and what to do. They all derive from :class:`DgkitError`, so a
widget or a script can catch one class and show the message instead of a traceback.
"""

from __future__ import annotations


class DgkitError(Exception):
    """Base class of every error dgkit raises on purpose."""


# --- inputs -------------------------------------------------------------------------------------------------
class InputError(DgkitError, ValueError):
    """An array, image or argument has the wrong type, shape, dtype, value range or contents."""


class LandmarkError(InputError):
    """Landmarks are NaN/inf, degenerate (e.g. zero eye width) or out of the expected frame."""


class ImageReadError(InputError):
    """An image file is missing, unreadable, truncated or not an image."""


class VideoError(InputError):
    """A video cannot be opened, has no decodable frames, or cannot be written."""


class OutputError(DgkitError):
    """An output cannot be written: it exists already (pass ``overwrite=True`` / ``--force``), another process
    is writing it, or its folder cannot be created or written."""


class OutputExistsError(OutputError, FileExistsError):
    """The output file exists and ``overwrite=True`` (CLI: ``--force``) was not given."""


class OutputBusyError(OutputError):
    """Another process is writing the same output file right now."""


class DeviceError(DgkitError, ValueError):
    """A torch device name is unknown, or the device is not available in this installation."""


class NoFaceError(DgkitError):
    """No face was found in an image."""


class BackendUnavailableError(DgkitError):
    """A landmark backend (or another optional component) is not installed or has no weights."""


# --- weights ------------------------------------------------------------------------------------------------
class WeightsError(DgkitError):
    """Base class of problems with weight files."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """One or more weight files are missing. The message lists each one and how to get it."""


class CheckpointError(WeightsError):
    """A weight file is truncated, corrupted, or its tensors do not match the expected architecture."""


class UnsafeCheckpointError(CheckpointError):
    """A weight file contains pickled objects other than tensors (it was refused, never executed)."""


class DownloadError(WeightsError):
    """A download failed or produced a file that does not verify."""


# --- training -----------------------------------------------------------------------------------------------
class DatasetError(DgkitError):
    """A dataset folder does not match the documented layout, or holds no usable samples."""


class ConfigError(DgkitError, ValueError):
    """A training or figure configuration has unknown keys or invalid values."""


class TrainingError(DgkitError):
    """Training cannot go on (e.g. the losses became NaN/inf); the message names the last good checkpoint."""


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM. The command line turns the signal into this exception (like Ctrl-C turns
    into KeyboardInterrupt), so unfinished outputs are removed on the way out; it is not caught by
    ``except Exception``."""


__all__ = [name for name, obj in globals().items() if isinstance(obj, type) and issubclass(obj, BaseException)]
