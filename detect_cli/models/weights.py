"""Official weights: downloaded once into the per-user cache; when they cannot be, one error that says
where to put them.
"""

from __future__ import annotations

from pathlib import Path

from detect_cli.errors import ModelError
from detect_cli.models.refs import ModelRef
from detect_cli.models.ultralytics_import import import_ultralytics, quiet_stdout


def fetch_weights(ref: ModelRef) -> Path:
    """Make sure an official model's weights are in the cache, downloading them on first use."""
    target = Path(ref.location)
    if target.is_file():
        return target
    import_ultralytics()
    from ultralytics.utils.downloads import attempt_download_asset

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with quiet_stdout():
            attempt_download_asset(target)
    except Exception as e:  # any failure here means the same thing to the user
        reason = str(e).replace("❌", "").strip().splitlines()[0] if str(e) else type(e).__name__
        raise WeightsUnavailableError(ref, reason) from e
    if not target.is_file():
        raise WeightsUnavailableError(ref, "download produced no file")
    return target


class WeightsUnavailableError(ModelError):
    """An official model's weights are not in the cache and cannot be downloaded; `reason` says why."""

    def __init__(self, ref: ModelRef, reason: str) -> None:
        super().__init__(_unavailable(ref, reason))
        self.reason = reason


def _unavailable(ref: ModelRef, reason: str) -> str:
    return (
        f"cannot get weights for {ref.name} ({reason}). Put them at {ref.location}, "
        f"or pass a local .pt with --model, or a .yaml (e.g. {ref.name}.yaml) for an untrained model"
    )
