"""Mergeability: the held-out loss along the straight path between merged models, its barrier,
and the task vectors' size, on constructed cases whose answer is known."""

from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml
from mixmerge.stages import train

from mixmerge.data.prepared import read_split
from mixmerge.merging import mergeability
from mixmerge.merging.replicates import write_merge
from mixmerge.validation import validate_params
from tests.conftest import TINY, inside, write

SETTINGS = validate_params(TINY).mergeability


def held_out(root: Path):
    prepared = root / "data" / "prepared"
    return mergeability.held_out(
        read_split(prepared, "dev", TINY["languages"]),
        read_split(prepared, "eval", TINY["languages"]),
    )


def test_a_model_merged_with_itself_has_no_barrier_and_no_task_vector(tiny_study):
    base = tiny_study / "models" / "base" / "seed-0"
    split, records = held_out(tiny_study)
    assert split == "eval"  # the tiny study has no dev split: its eval answers stand in
    found = mergeability.measure(
        [("base", base), ("base", base)], ("base", base), records, split, SETTINGS, base
    )
    [path] = found.paths
    # Exactly: every point of the path is the model. Per objective and language.
    assert set(found.barrier.values()) == {0.0} and set(found.by_language()) == {"en", "hi"}
    assert all(len(set(losses)) == 1 for losses in path.losses.values())
    assert found.merged == {code: losses[0] for code, losses in path.losses.items()}
    assert found.relative_norms == {"base": 0.0} and all(found.connected().values())
    assert found.reading() == (
        "linearly connected (no barrier beyond 5% of the ends' loss; ‖τ‖/‖θ‖ 0.000); the models "
        "do equally well on every objective"
    )


def permuted(folder: Path, out: Path) -> None:
    """The same network with the hidden units of every MLP in another order: it computes the
    same function, but the straight path to it from the original crosses other functions."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in model.model.layers:
            mlp = layer.mlp
            order = torch.randperm(mlp.gate_proj.out_features, generator=generator)
            mlp.gate_proj.weight.copy_(mlp.gate_proj.weight[order])
            mlp.up_proj.weight.copy_(mlp.up_proj.weight[order])
            mlp.down_proj.weight.copy_(mlp.down_proj.weight[:, order])
    shutil.copytree(folder, out)
    model.save_pretrained(out)


def test_a_permuted_twin_computes_the_same_yet_its_path_rises(tiny_study, tmp_path):
    base = tiny_study / "models" / "base" / "seed-0"
    twin = tmp_path / "twin"
    permuted(base, twin)
    split, records = held_out(tiny_study)
    found = mergeability.measure([("base", base), ("twin", twin)], None, records, split, SETTINGS)
    [path] = found.paths
    for losses in path.losses.values():
        assert losses[0] == pytest.approx(losses[-1], abs=1e-6)  # one function at both ends
    # ...and other functions between them: on the answers the base learnt (general, safety),
    # measured 0.08 to 0.15 nats above the ends; the tiny base is near its untrained loss
    # (5.3 to 6.4 nats), so the rise is small in all, and on the benign answers it never
    # learnt the path dips (a scrambled middle is nearer uniform).
    for group in ("general/en", "general/hi", "safety/en", "safety/hi"):
        assert found.barrier[group] > 0.04, path.losses
    assert found.relative_norms == {} and found.reference is None


def test_the_reading_says_where_the_path_rises_and_how_much_edge_the_middle_keeps():
    alphas = (0.0, 0.25, 0.5, 0.75, 1.0)
    # General answers: the general model (α = 0) at 0.1 nats, the safety model at 8.0, the
    # middle at 2.0, below the line between them (no barrier) yet a quarter of the edge gone.
    trade = (0.1, 0.5, 2.0, 5.0, 8.0)
    bump = (2.0, 2.05, 2.3, 2.05, 2.0)  # equal ends, a rise between them
    found = mergeability.Mergeability(
        "dev", 0.05,
        (mergeability.PathLosses("a", "b", alphas, {"general/en": trade, "safety/hi": bump}),),
        "base", {"a": 0.02, "b": 0.03}, {"a | b": 0.4},
    )  # fmt: skip
    assert found.barrier == {"general/en": 0.0, "safety/hi": pytest.approx(0.3)}
    assert found.connected() == {"general/en": True, "safety/hi": False}  # 0.3 > 5 % of 2.0
    assert found.by_language() == {"en": 0.0, "hi": pytest.approx(0.3)}
    assert found.edge_kept() == {"general/en": pytest.approx(6.0 / 7.9), "safety/hi": None}
    assert found.reading() == (
        "not linearly connected on safety answers in hi (barrier up to 0.300 nats, safety/hi; "
        "‖τ‖/‖θ‖ 0.020, 0.030); their middle keeps 76% of the general edge: averaging is "
        "expected to lose much of what the models learnt"
    )
    assert mergeability.Mergeability.from_json(found.to_json()) == found


def test_fine_tunes_at_a_small_rate_are_connected_and_the_merge_reports_it(study):
    """Two SFT runs of one base (the 15 % and the 100 % mix, a few steps at 1e-3), merged by
    the merge stage's code with the study's probe."""
    raw = copy.deepcopy(TINY)
    raw["train"]["sft"] |= {"max_steps": 4}
    raw["sft"]["mix100"] = {"mixture": "mix100", "init": "base"}
    halves = [{"model": "sft/mix15", "weight": 0.5}, {"model": "sft/mix100", "weight": 0.5}]
    raw["merges"] = {"halves": {"method": "linear", "stage": "sft", "models": halves}}
    params = validate_params(raw)
    write(study, raw)
    with inside(study):
        train.run(params, "sft", "mix15")
        train.run(params, "sft", "mix100")
        probe = mergeability.probe(params, Path("."))
        summary = write_merge("halves", params.merges["halves"], [0], Path("."), 10**9, probe)
    found = summary["mergeability"]["seed-0"]
    on_disk = json.loads((study / "reports/merges/halves.json").read_text())["mergeability"]
    assert on_disk == {"seed-0": found}
    assert found["split"] == "eval" and found["reference"] == "base"
    sizes = found["relative_norms"]
    assert set(sizes) == {"sft/mix15", "sft/mix100"}
    # measured 0.02–0.03: four steps at 1e-3 move a model little
    assert all(0 < size < 0.1 for size in sizes.values()), sizes
    assert all(found["connected"].values()), found
    assert found["reading"].startswith("linearly connected (no barrier")
    # The merged model is the path's middle (a Linear merge of two at 0.5).
    [path] = found["paths"]
    middle = path["alphas"].index(0.5)
    for code, loss in found["merged"].items():
        assert loss == pytest.approx(path["losses"][code][middle], abs=1e-4)


def test_the_alphas_must_run_from_end_to_end():
    from pydantic import ValidationError

    from mixmerge.config.merges import MergeabilityConfig

    with pytest.raises(ValidationError, match="alphas rise from 0 to 1"):
        MergeabilityConfig(alphas=[0.0, 0.5, 0.9])


# A stand-in for the study whose report a regime sweep reads: it writes the report's metrics
# from the swept learning rate (the larger it is, the farther the runs move and the less of each
# edge the merge keeps). The sweep and `dvc exp show` are DVC's own.
REPORT = """\
import json, yaml
rate = yaml.safe_load(open("params.yaml"))["train"]["sft"]["learning_rate"]
merge = {"barrier": 0.0, "relative_norm": 200 * rate, "connected": True,
         "edge_kept": {"general": 1 - 300 * rate, "safety": 0.9}}
claims = {"Merging beats mixing": "supported" if rate < 1e-3 else "contradicted"}
json.dump({"mergeability": {"sft_linear": merge}, "claims": claims},
          open("reports/summary.json", "w"))
"""


def test_a_regime_sweep_is_tabulated_from_the_experiments_dvc_shows(tmp_path):
    from tests.conftest import run_in

    root = tmp_path / "sweep"
    (root / "reports").mkdir(parents=True)
    (root / "report.py").write_text(REPORT)
    raw = {
        "train": {"sft": {"learning_rate": 1.0e-3}},
        "report": {"objective": {"Linear": {"sft": "merge/sft_linear"}}},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    stage = {
        "cmd": f"{sys.executable} report.py", "deps": ["report.py"],
        "params": ["train.sft.learning_rate"],
        "metrics": [{"reports/summary.json": {"cache": False}}],
    }  # fmt: skip
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"report": stage}}))
    (root / ".gitignore").write_text("reports/regime/\n")
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"]):
        run_in(command, root)
    run_in(["git", "commit", "-qm", "study"], root)
    for rate in ("1e-4", "3e-4"):
        setting = f"train.sft.learning_rate={rate}"
        run_in(["dvc", "exp", "run", "--name", f"lr-{rate}", "-S", setting], root)

    said = run_in(["mixmerge", "regime"], root)
    assert "2 experiments" in said, said  # the workspace has no report of its own
    table = (root / "reports/regime/regime.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| lr-")]
    # Ordered by how far the runs moved; the swept rate, the regime and the verdict per row.
    assert rows == [
        "| lr-1e-4 | 0.0001 | 0.020 | 0.000 | 97% | 90% | supported |",
        "| lr-3e-4 | 0.0003 | 0.060 | 0.000 | 91% | 90% | supported |",
    ]
    assert "1. Merging beats mixing" in table
    assert (root / "reports/regime/regime.png").stat().st_size > 10_000
