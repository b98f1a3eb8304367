"""The one exception family users can cause; the CLI turns each into a line on stderr and an exit code."""

from __future__ import annotations


class ExitCode:
    OK = 0
    SOME_FAILED = 1
    CANNOT_RUN = 2
    INTERRUPTED = 130


class DetectError(Exception):
    """Base of every error the user can cause. `str(err)` is the message shown to them."""

    exit_code: int = ExitCode.CANNOT_RUN


class BadOptionError(DetectError):
    """An option value that cannot be used (unknown class name, unavailable device, ...)."""


class NoInputsError(DetectError):
    """The sources named nothing that could be processed."""


class ModelError(DetectError):
    """A model that cannot be resolved, downloaded or loaded."""


class ExportError(ModelError):
    """An ONNX/OpenVINO export that cannot be made, written or loaded (`--backend auto` then runs
    the model on PyTorch)."""


class MissingBackendError(DetectError):
    """An optional inference backend asked for by name that is not installed."""


class InputError(DetectError):
    """One input that cannot be read or decoded; recorded against that input and the run goes on."""

    exit_code = ExitCode.SOME_FAILED


class OutputError(DetectError):
    """The output folder cannot be created or written."""


class LabelsError(DetectError):
    """Labels (a YOLO data.yaml or a COCO json) that cannot be read or do not match the images."""
