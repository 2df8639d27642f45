"""The language-modelling task plugs into the flow's steps unchanged: train, samples, fit."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import nas
from nas import flow
from nas.tasks import DataSpec, create_task
from nas.text_data import load_text


def test_pydoc_corpus_windows_and_targets() -> None:
    data = load_text("pydoc", seq_len=32)
    assert data.num_classes == 256 and len(data) > 10_000
    x, y = data.batch(np.arange(3))
    assert x.shape == y.shape == (3, 32) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the next tokens


def test_perplexity_of_a_uniform_model_is_the_vocabulary() -> None:
    task = create_task("language_modelling")
    _, val = task.load(DataSpec(data="pydoc", seq_len=16, limit=40, val_fraction=0.25))

    class Uniform(torch.nn.Module):
        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return torch.zeros(*ids.shape, 256)

    row = task.measure(Uniform(), val)
    assert row["perplexity"] == pytest.approx(256.0, rel=1e-5)
    assert row["loss"] == pytest.approx(math.log(256.0), rel=1e-6)


def test_text_file_and_bad_inputs(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello world " * 50, encoding="utf-8")
    assert len(load_text(tmp_path, seq_len=8)) == (600 - 1) // 8
    with pytest.raises(nas.MissingFileError, match="no such text file"):
        load_text(tmp_path / "missing.txt")
    (tmp_path / "b.bin").write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(nas.ConfigError, match="not UTF-8"):
        load_text(tmp_path / "b.bin")


@pytest.mark.skipif("gpt_tiny" not in nas.list_spaces(), reason="no gpt_tiny space")
def test_gpt_through_train_and_samples(tmp_path: Path) -> None:
    run = tmp_path / "gpt"
    data = DataSpec(data="pydoc", seq_len=32, limit=96, val_fraction=0.25)
    result = flow.train(run, "gpt_tiny", data=data,
                        config=nas.TrainConfig(epochs=1, batch_size=16, label_smoothing=0.0,
                                               eval_bn_batches=1))
    assert set(result.final["largest"]) == {"perplexity", "loss"}
    used = json.loads((run / "supernet" / "config.json").read_text())["config"]
    assert (used["optimizer"], used["lr"], used["weight_decay"]) == ("adamw", 3e-3, 0.01)
    samples = flow.collect_samples(run, 3, bn_batches=0)
    assert list(samples.frame.columns) == ["key", "arch", "perplexity", "loss"]
    assert (samples.values("perplexity") > 1).all()
    assert (run / "samples" / "perplexity.csv").is_file()
