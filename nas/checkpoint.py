"""Training checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint is a dict of tensors and plain values (no pickled objects): the model, optimizer,
scheduler and AMP-scaler states, the distillation teacher, the RNG states, the data position
(epoch, batch within the epoch, global step) and the space fingerprint. It is written to a
temporary file and renamed into place (:func:`nas.rundir.atomic_write`), so a crash leaves the
previous checkpoint intact, and read with ``torch.load(weights_only=True)``.

Example:
    >>> save_checkpoint(run.path / "supernet" / "checkpoint.pt", state, space=supernet.space)
    >>> state = load_checkpoint(run.path / "supernet" / "checkpoint.pt", space=supernet.space)
"""

from __future__ import annotations

import logging
import pickle
import pickletools
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from nas.errors import ConfigError, MissingFileError, NasError
from nas.rundir import atomic_write
from nas.space import SearchSpace

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "space", "fingerprint", "step", "epoch", "batch", "model")


class CheckpointError(NasError, ValueError):
    """A checkpoint is missing, corrupt, or belongs to another space or configuration."""


def rng_state(device: str | torch.device = "cpu") -> dict[str, Any]:
    """Torch's CPU (and, on CUDA devices, CUDA) RNG states."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict[str, Any], *, space: SearchSpace) -> Path:
    """Atomically write ``state`` (plus format, space name and fingerprint) to ``path``.

    Args:
        path: the checkpoint file (``runs/<name>/supernet/checkpoint.pt``).
        state: tensors, state dicts and plain values; must hold ``step``, ``epoch``,
            ``batch`` and ``model``.
        space: the supernet's search space (its fingerprint is stored).
    """
    payload = {
        **state,
        "format": FORMAT_VERSION,
        "space": space.name,
        "fingerprint": space.fingerprint(),
    }
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise ConfigError(f"checkpoint state lacks {missing}")
    out = atomic_write(path, lambda f: torch.save(payload, f))
    log.debug("checkpoint step %s written to %s", state["step"], out)
    return out


def _holds_objects(path: Path, exc: Exception) -> bool:
    """Whether ``path`` is a pickle that names Python objects (refused by weights-only
    loading) rather than garbage. Reads the opcodes only; nothing is run."""
    if "unsupported global" in str(exc).lower():
        return True
    try:
        ops = {op.name for op, _, _ in pickletools.genops(path.read_bytes())}
    except Exception:  # not a pickle stream at all
        return False
    return bool(ops & {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE"})


def load_checkpoint(
    path: str | Path, *, space: SearchSpace, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` for ``space``.

    Raises:
        FileNotFoundError: there is no checkpoint at ``path``.
        CheckpointError: it is truncated or corrupt, of an unknown format, or was written for
            a space with another fingerprint.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no checkpoint to resume from")
    try:
        with warnings.catch_warnings():  # torch warns about legacy files before refusing them
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if not _holds_objects(path, exc):
            raise CheckpointError(
                f"{path}: checkpoint is corrupt or truncated (not a torch file of tensors); "
                "delete it to start over"
            ) from None
        raise CheckpointError(
            f"{path}: refused: the file holds pickled objects other than tensors, which "
            "weights-only loading does not run (a checkpoint not written by nas, or tampered with)"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"{path}: checkpoint is corrupt or truncated ({type(exc).__name__}: {exc}); "
            "delete it to start over"
        ) from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        raise CheckpointError(f"{path}: not a training checkpoint (expected keys {REQUIRED_KEYS})")
    if state["format"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {state['format']!r}, this version reads {FORMAT_VERSION}"
        )
    if state["fingerprint"] != space.fingerprint():
        raise CheckpointError(
            f"{path}: checkpoint is for space {state['space']!r} (fingerprint "
            f"{state['fingerprint']}), not {space.name!r} (fingerprint {space.fingerprint()})"
        )
    return state
