"""Export a subnet to a folder (weights, torch.export program, ONNX) and load it back.

An export folder holds:

* ``arch.json`` — space name and fingerprint, the architecture, ``num_classes``, input shape,
  how to rebuild the module and a SHA-256 of every other file (written last: a folder without
  it is incomplete);
* ``weights.pt`` — the state dict of the extracted module (``torch.save`` of tensors only);
* ``program.pt2`` — ``torch.export.save`` of the module in eval mode at the arch's resolution;
* ``model.onnx`` — a single-file ONNX model (input ``input``, output ``logits``);
* ``metrics.json`` — when metrics are given.

Example:
    >>> supernet = nas.create_supernet("tiny", num_classes=10)
    >>> arch = supernet.space.sample(np.random.default_rng(0))
    >>> out = nas.export_subnet(supernet, arch, "runs/demo/exports/cpu/" + arch.key)
    >>> model = nas.load_subnet(out)                       # nn.Module, eval mode
    >>> session = nas.load_subnet(out, format="onnx")      # onnxruntime.InferenceSession
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import tempfile
import warnings
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from nas.errors import ConfigError, MissingFileError, RunDirError
from nas.export_formats import EXPORT_FORMATS
from nas.registry import create_supernet, space_module
from nas.rundir import (
    ARCH_FILE,
    METRICS_FILE,
    ONNX_FILE,
    PROGRAM_FILE,
    WEIGHTS_FILE,
    atomic_write,
    atomic_write_json,
    read_json,
)
from nas.space import ArchConfig
from nas.space_recipes import recipe_of, resolve_recorded_space
from nas.supernet import Supernet

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FORMATS = ("torch", "export", "onnx")


def check_formats(formats: Collection[str]) -> None:
    """Refuse export format names that are neither built in nor registered (before work)."""
    if not formats:
        raise ConfigError(f"formats: name at least one of {[*FORMATS, *EXPORT_FORMATS.names()]}")
    EXPORT_FORMATS.select(formats, FORMATS)
LoadFormat = Literal["torch", "export", "onnx"]


def export_subnet(
    supernet: Supernet,
    arch: ArchConfig,
    out_dir: str | Path,
    *,
    example_input: torch.Tensor | None = None,
    metrics: Mapping[str, Any] | None = None,
    formats: Collection[str] = FORMATS,
) -> Path:
    """Extract ``arch`` from ``supernet`` and write it to ``out_dir`` (every file atomically).

    Args:
        supernet: the trained supernet.
        arch: the architecture to export (validated against the supernet's space).
        out_dir: the folder to write (created if missing; files in it are replaced).
        example_input: the input to trace with (default: ``supernet.example_input(arch)``).
            The batch dimension is dynamic where the exporters allow it (``arch.json`` says
            so in ``dynamic_batch``); the other dimensions are fixed to the example's.
        metrics: written to ``metrics.json`` (e.g. accuracy and latency of the arch).
        formats: which of ``"torch"`` (always written), ``"export"`` and ``"onnx"`` to write,
            and formats plug-ins register (:mod:`nas.export_formats`; ``"hf"``: a Hugging
            Face ``save_pretrained`` folder ``hf/`` for decoder LMs).

    Returns:
        ``out_dir`` as a :class:`Path`.

    Raises:
        InvalidArchError: ``arch`` is not an architecture of the supernet's space.
        ValueError: bad ``formats``, or no resolution to build the example input from.

    Example:
        >>> nas.export_subnet(supernet, arch, "exports/a", metrics={"accuracy": 71.2})
    """
    plugins = _plugin_formats(supernet, arch, formats)  # validates arch, before any work
    if example_input is not None and not isinstance(example_input, torch.Tensor):
        raise ConfigError("example_input must be a tensor (a batch of the network's input)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # no arch.json while writing: a folder without one is an incomplete export
    (out / ARCH_FILE).unlink(missing_ok=True)
    model = supernet.extract(arch).eval()
    x = example_input if example_input is not None else supernet.example_input(arch)
    x = x.to(next(model.parameters()).device)
    if x.shape[0] == 1:  # a traced batch of 1 would be specialised; trace 2, allow any
        x = torch.cat([x, x])
    atomic_write(out / WEIGHTS_FILE, lambda f: torch.save(model.state_dict(), f))
    written = {WEIGHTS_FILE: _sha256(out / WEIGHTS_FILE)}
    errors: dict[str, str] = {}
    dynamic = _write_program_and_onnx(model, x, out, formats, written, errors, arch.key)
    written.update({p.relative_to(out).as_posix(): _sha256(p) for fmt in plugins
                    for p in fmt.write(supernet, arch, out)})
    if metrics is not None:
        atomic_write_json(out / METRICS_FILE, dict(metrics))
        written[METRICS_FILE] = _sha256(out / METRICS_FILE)
    for stale in (PROGRAM_FILE, ONNX_FILE, METRICS_FILE):
        if stale not in written:  # left by an earlier export into the same folder
            (out / stale).unlink(missing_ok=True)
    atomic_write_json(out / ARCH_FILE, _arch_info(supernet, arch, x, dynamic, written, errors))
    log.info("exported %s to %s (%s)", arch.key, out, ", ".join(written))
    return out


def _plugin_formats(supernet: Supernet, arch: ArchConfig, formats: Collection[str]) -> list[Any]:
    """The plug-in formats among ``formats`` (e.g. ``"hf"``), after validating ``arch`` and
    letting each refuse it: an arch a format cannot hold fails before any file is written."""
    plugins = EXPORT_FORMATS.select(formats, FORMATS)
    supernet.space.validate(arch)
    for fmt in plugins:
        fmt.check(supernet, arch)
    return plugins


def write_export_metrics(out_dir: str | Path, metrics: Mapping[str, Any]) -> Path:
    """Replace an export's ``metrics.json`` (and its checksum in ``arch.json``)."""
    out = Path(out_dir)
    info = _read_info(out)
    atomic_write_json(out / METRICS_FILE, dict(metrics))
    info["files"] = {**info["files"], METRICS_FILE: _sha256(out / METRICS_FILE)}
    atomic_write_json(out / ARCH_FILE, info)
    return out / METRICS_FILE


def _write_program_and_onnx(
    model: nn.Module, x: torch.Tensor, out: Path, formats: Collection[str],
    written: dict[str, str], errors: dict[str, str], key: str,
) -> bool:
    """Write ``program.pt2`` and ``model.onnx`` as asked (a failure is recorded in
    ``errors``, the rest of the export stays usable); returns whether the batch is dynamic."""
    program, dynamic = None, False
    if "export" in formats or "onnx" in formats:
        try:
            program, dynamic = _torch_export(model, x)
        except Exception as exc:  # torch.export raises many types; the export stays usable
            log.warning("torch.export failed for %s, no %s: %s", key, PROGRAM_FILE, exc)
            errors[PROGRAM_FILE] = f"{type(exc).__name__}: {exc}"
    if "export" in formats and program is not None:
        buffer = io.BytesIO()
        try:
            torch.export.save(program, buffer)
        except Exception as exc:  # a program that exports but does not serialise
            log.warning("torch.export.save failed for %s: %s", key, exc)
            errors[PROGRAM_FILE] = f"{type(exc).__name__}: {exc}"
        else:
            atomic_write(out / PROGRAM_FILE, lambda f: f.write(buffer.getvalue()))
            written[PROGRAM_FILE] = _sha256(out / PROGRAM_FILE)
    if "onnx" in formats:
        try:
            data = _onnx_bytes(model, program, x)
        except Exception as exc:  # the exporters raise many types; report, keep the rest
            log.warning("ONNX export failed for %s; writing no %s: %s", key, ONNX_FILE, exc)
            errors[ONNX_FILE] = f"{type(exc).__name__}: {exc}"
        else:
            atomic_write(out / ONNX_FILE, lambda f: f.write(data))
            written[ONNX_FILE] = _sha256(out / ONNX_FILE)
    return dynamic


def _arch_info(supernet: Supernet, arch: ArchConfig, x: torch.Tensor, dynamic: bool,
               written: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    """The contents of ``arch.json``: what the export is and how to rebuild it."""
    space = supernet.space
    return {
        "format_version": FORMAT_VERSION,
        "space": space.name,
        "space_module": space_module(space.name),
        "space_recipe": recipe_of(space),
        "fingerprint": space.fingerprint(),
        "arch_key": arch.key,
        "arch": arch.to_dict(),
        "num_classes": supernet.num_classes,
        "supernet_options": supernet.options,
        # a language model reads token sequences: their length, not an image resolution
        **({"seq_len": int(x.shape[1])} if "seq_len" in space.meta
           else {"resolution": supernet.input_resolution(arch)}),
        "input_shape": list(x.shape),
        "input_dtype": str(x.dtype).removeprefix("torch."),
        "dynamic_batch": dynamic,
        "rebuild": (
            f"import {space_module(space.name)}; nas.create_supernet({space.name!r}, "
            f"**build_kwargs).extract(nas.create_space({space.name!r}).from_json(arch_json)), "
            f"then load_state_dict(torch.load('{WEIGHTS_FILE}', weights_only=True))"
        ),
        "torch_version": torch.__version__,
        "files": written,
        "errors": errors,
    }


def load_subnet(out_dir: str | Path, *, format: LoadFormat = "torch") -> Any:
    """Load an export folder written by :func:`export_subnet`.

    Args:
        out_dir: the export folder.
        format: ``"torch"``: the static ``nn.Module`` (eval mode), rebuilt from the space's
            supernet with ``weights.pt`` loaded; ``"export"``: the ``torch.export``
            ``ExportedProgram`` (call ``.module()`` to run it); ``"onnx"``: an
            ``onnxruntime.InferenceSession`` on the CPU.

    Raises:
        FileNotFoundError: the folder, ``arch.json`` or the requested file is missing.
        ValueError: bad ``format``; a file is corrupt or changed since export; the space's
            definition changed (fingerprint mismatch).

    Example:
        >>> model = nas.load_subnet("exports/a")
        >>> logits = model(torch.randn(1, 3, 224, 224))
    """
    if format not in FORMATS:
        raise ConfigError(f"format must be one of {list(FORMATS)}, got {format!r}")
    root = Path(out_dir)
    if not root.is_dir():
        raise MissingFileError(f"{root}: no such export folder")
    info = _read_info(root)
    if format == "torch":
        return _load_torch(root, info)
    name = PROGRAM_FILE if format == "export" else ONNX_FILE
    path = _checked_file(root, info, name)
    if format == "export":
        try:
            return torch.export.load(path)
        except Exception as exc:
            raise RunDirError(f"{path}: not a readable torch.export program ({exc})") from None
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise RunDirError(f"{path}: not a readable ONNX model ({exc})") from None


def onnx_model_bytes(model: nn.Module, x: torch.Tensor) -> bytes:
    """``model`` as the single-file ONNX model :func:`export_subnet` writes for input ``x``
    (the same exporters; a batch of 1 traced as 2, with a dynamic batch where it traces).

    Example:
        >>> data = onnx_model_bytes(spec.build(), torch.randn(spec.input_shape(1)))
    """
    model = model.eval()
    if x.shape[0] == 1:
        x = torch.cat([x, x])
    try:
        program, _ = _torch_export(model, x)
    except Exception:  # as export_subnet: the ONNX exporters get the module itself
        program = None
    return _onnx_bytes(model, program, x)


def _torch_export(model: nn.Module, x: torch.Tensor) -> tuple[Any, bool]:
    """``(ExportedProgram, dynamic_batch)``: a dynamic batch dimension if it traces, else fixed."""
    with _quiet():
        try:
            batch = torch.export.Dim("batch", min=1, max=65536)
            return torch.export.export(model, (x,), dynamic_shapes=({0: batch},)), True
        except Exception as exc:  # e.g. a model that reshapes with a fixed batch
            log.info("no dynamic batch (%s); exporting with a fixed one", exc)
            return torch.export.export(model, (x,)), False


def _onnx_bytes(model: nn.Module, program: Any, x: torch.Tensor) -> bytes:
    """A single-file ONNX model: the dynamo exporter (from ``program`` if there is one),
    falling back to the TorchScript-based exporter."""
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        path = Path(tmp) / ONNX_FILE
        try:
            torch.onnx.export(
                program if program is not None else model,
                (x,),
                str(path),
                dynamo=True,
                external_data=False,
                input_names=["input"],
                output_names=["logits"],
                verbose=False,
            )
        except Exception as exc:
            log.info("dynamo ONNX export failed (%s); trying the TorchScript exporter", exc)
            path.unlink(missing_ok=True)
            torch.onnx.export(
                model,
                (x,),
                str(path),
                dynamo=False,
                input_names=["input"],
                output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            )
        stray = [p.name for p in Path(tmp).iterdir() if p != path]
        if stray:  # external data files would be lost: inline them
            import onnx

            proto = onnx.load(str(path), load_external_data=True)
            return proto.SerializeToString()
        return path.read_bytes()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' chatter (deprecations, "torchvision is not installed"): it is
    torch's to fix, not the user's."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        registration.setLevel(level)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_info(root: Path) -> dict[str, Any]:
    info = read_json(root / ARCH_FILE)
    required = ("space", "fingerprint", "arch", "num_classes", "files")
    missing = [k for k in required if not isinstance(info, dict) or k not in info]
    if missing:
        raise RunDirError(f"{root / ARCH_FILE}: missing fields {missing}")
    return dict(info)


def _checked_file(root: Path, info: Mapping[str, Any], name: str) -> Path:
    """``root/name``, after checking it exists and matches the checksum in ``arch.json``."""
    path = root / name
    if not path.is_file():
        reason = info.get("errors", {}).get(name)
        why = f" (export failed: {reason})" if reason else ""
        raise MissingFileError(f"{path}: no such file{why}")
    expected = info["files"].get(name)
    if expected is not None and _sha256(path) != expected:
        raise RunDirError(
            f"{path}: checksum differs from the one in {ARCH_FILE}; the file is corrupt or "
            "was changed after export"
        )
    return path


def _load_torch(root: Path, info: Mapping[str, Any]) -> nn.Module:
    space = resolve_recorded_space(str(info["space"]), module=info.get("space_module") or None,
                                   recipe=info.get("space_recipe"))
    if space.fingerprint() != info["fingerprint"]:
        raise RunDirError(
            f"{root / ARCH_FILE}: exported from space {info['space']!r} with fingerprint "
            f"{info['fingerprint']}, but the registered space now has {space.fingerprint()}; "
            "the space definition changed"
        )
    arch = space.from_json({"space": info["space"], "arch": info["arch"]})
    path = _checked_file(root, info, WEIGHTS_FILE)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RunDirError(f"{path}: corrupt or unreadable weights file ({exc})") from None
    options = info.get("supernet_options", {})
    if not isinstance(options, dict):
        raise RunDirError(f"{root / ARCH_FILE}: 'supernet_options' must be an object")
    supernet = create_supernet(space.name, num_classes=int(info["num_classes"]), **options)
    if not isinstance(supernet, Supernet):
        raise ConfigError(f"space {space.name!r} registers a supernet that is not a nas.Supernet")
    model = supernet.extract(arch)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise RunDirError(f"{path}: weights do not fit the architecture ({exc})") from None
    return model.eval()
