"""Merging: the methods' arithmetic, the streaming engine, the merge stage, and agreement with
mergekit 0.1.5 (the reference the paper used) on tiny Llama models."""

from __future__ import annotations

import json
import math
import shutil
import struct
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path

import pytest
import torch
import yaml
from mixmerge.stages import merge as merge_stage
from mixmerge.stages.cli import app
from safetensors.torch import load_file
from typer.testing import CliRunner

from mixmerge import paths
from mixmerge.config.common import ParamsError
from mixmerge.core.errors import StageError
from mixmerge.merging import engine, parameters, replicates, selection
from mixmerge.merging.definition import Inputs, PerModel, Share, merge_method
from mixmerge.merging.parts import CHUNK, chunks
from mixmerge.merging.plan import Job
from mixmerge.merging.registry import METHODS, method_table
from mixmerge.merging.tensors import Parts, TaskVectors, computed, l1_factors
from mixmerge.merging.weights import check_compatible, read_weights
from mixmerge.validation import validate_params
from tests.conftest import REPO, inside


@pytest.fixture(autouse=True)
def one_torch_thread():
    """As the engine runs: torch's threads stall whenever another process holds a core."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --- the methods, on small tensors -----------------------------------------------------------
# Each method's computation as the engine calls it (`tensors.computed`, with every parameter's
# value at the tensor), over whole tensors of one shape: stacked flat, a row each, as the
# engine stacks its inputs, and their parts put back together.


def rows(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.stack([tensor.reshape(-1) for tensor in tensors])


def whole(parts: Iterable[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    return torch.cat(list(parts)).reshape(like.shape)


def merged(name: str, tensors, base=None, seed=0, **given) -> torch.Tensor:
    """Method `name` over `tensors` (from `base` for task vectors), with the parameters
    `given` (a list per model for those of each model) and the method's defaults."""
    method = METHODS[name]
    arguments = {
        p.name: [p.default] * len(tensors) if p.per_model else p.default for p in method.parameters
    }
    arguments |= {key.rstrip("_"): value for key, value in given.items()}
    generators = [torch.Generator().manual_seed(seed + i) for i in range(len(tensors))]
    flat_base = None if base is None else base.reshape(-1)
    return whole(computed(method, rows(tensors), flat_base, arguments, generators), tensors[0])


def linear(tensors, weights, normalize=True):
    return merged("linear", tensors, weight=weights, normalize=normalize)


def slerp(t, v0, v1):
    return merged("slerp", [v0, v1], t=t)


def vector_merge(
    name, base, tensors, weights, densities=None, normalize=None, rescale=False, scale=1.0, seed=0
):
    given = {"weight": weights, "rescale": rescale, "lambda": scale}
    if densities is not None:
        given["density"] = densities
    if normalize is not None:
        given["normalize"] = normalize
    return merged(name, tensors, base, seed, **given)


TASK_VECTOR_METHODS = [n for n, m in METHODS.items() if m.inputs is Inputs.TASK_VECTORS]


@pytest.mark.parametrize("name", TASK_VECTOR_METHODS)
def test_a_task_vector_merge_of_a_model_with_itself_is_itself(name):
    base, model = torch.randn(5, 7), torch.randn(5, 7)
    merged = vector_merge(name, base, [model, model], [0.5, 0.5])
    assert torch.allclose(merged, model, atol=1e-6)


def test_linear_and_slerp_of_a_model_with_itself_are_itself():
    model = torch.randn(4, 6)
    assert torch.allclose(linear([model, model], [0.3, 0.7]), model)
    assert torch.allclose(slerp(0.4, model, model), model)


def test_slerp_ends_are_the_two_models_and_its_middle_stays_on_the_sphere():
    v0, v1 = torch.randn(3, 5), torch.randn(3, 5)
    assert torch.allclose(slerp(0.0, v0, v1), v0, atol=1e-6)
    assert torch.allclose(slerp(1.0, v0, v1), v1, atol=1e-6)
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    half = math.sqrt(0.5)
    assert torch.allclose(slerp(0.5, e1, e2), torch.tensor([half, half]), atol=1e-6)
    nearly = e1 + 1e-6 * e2  # collinear: linear interpolation, not the unstable formula
    assert torch.allclose(slerp(0.5, e1, nearly), (e1 + nearly) / 2)


def test_linear_weights_hand_computed():
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 6.0])
    assert linear([a, b], [1.0, 0.0]).tolist() == [1.0, 2.0]
    assert linear([a, b], [1.0, 3.0]).tolist() == [2.5, 5.0]
    assert linear([a, b], [1.0, 3.0], normalize=False).tolist() == [10.0, 20.0]


def test_a_tensor_of_several_parts_is_merged_as_one_whole():
    """Part by part, as the engine writes them: every part in order, and SLERP's angle that of
    the whole tensors, against the formulas over them in float64."""
    generator = torch.Generator().manual_seed(0)
    count = 3 * CHUNK + 5
    a, b = torch.randn(2, count, generator=generator).to(torch.bfloat16)
    x, y = a.double(), b.double()
    arguments = {"weight": [1.0, 3.0], "normalize": True}
    parts = list(computed(METHODS["linear"], rows([a, b]), None, arguments))
    assert [p.numel() for p in parts] == [CHUNK] * 3 + [5]
    assert {p.dtype for p in parts} == {torch.float32}
    assert torch.allclose(torch.cat(parts).double(), (x + 3 * y) / 4, atol=1e-6, rtol=0)
    theta = torch.arccos(x @ y / (x.norm() * y.norm()))
    t = 0.3
    expected = (torch.sin((1 - t) * theta) * x + torch.sin(t * theta) * y) / torch.sin(theta)
    parts = list(computed(METHODS["slerp"], rows([a, b]), None, {"t": t}))
    assert [p.numel() for p in parts] == [CHUNK] * 3 + [5]
    assert torch.allclose(torch.cat(parts).double(), expected, atol=1e-6, rtol=0)


def test_task_arithmetic_hand_computed_and_zero_lambda_is_the_base():
    base = torch.tensor([1.0, 1.0, 1.0])
    a, b = torch.tensor([2.0, -1.0, 4.0]), torch.tensor([3.0, 3.0, 0.0])
    merged = vector_merge("task_arithmetic", base, [a, b], [1.0, 1.0], scale=0.5)
    assert merged.tolist() == [2.5, 1.0, 2.0]  # 1 + 0.5 * ([1, -2, 3] + [2, 2, -1])
    assert torch.equal(vector_merge("task_arithmetic", base, [a, b], [1.0, 1.0], scale=0.0), base)


def test_ties_keeps_the_largest_entries_and_the_elected_sign_hand_computed():
    base = torch.zeros(4)
    a = torch.tensor([1.0, -2.0, 3.0, 0.1])  # density 0.5 keeps 3 and -2
    b = torch.tensor([2.0, 2.5, -1.0, -0.2])  # keeps 2.5 and 2
    merged = vector_merge("ties", base, [a, b], [1.0, 1.0], densities=[0.5, 0.5])
    # Σ = [2, 0.5, 3, 0]: every elected sign is +, so a's -2 is dropped; kept entries average.
    assert merged.tolist() == [2.0, 2.5, 3.0, 0.0]


def rows_of(magnitudes: torch.Tensor):
    """`parts.Values` of a tensor of magnitudes (a row per task vector)."""

    def values(index, rows=None):
        return (magnitudes if rows is None else magnitudes[rows])[:, index]

    return values


def top(values: torch.Tensor, k: int, later: bool = False) -> selection.Cutoff:
    """`selection.tops` for one flat tensor."""
    return selection.tops(rows_of(values[None]), values.numel(), [k], later)[0]


def kept(how: str, delta: torch.Tensor, *shares: float) -> torch.Tensor:
    """Which entries of task vector `delta` a thinning keeps (`TaskVectors.largest`, TIES's,
    or `band`, Breadcrumbs'), at these shares."""
    vectors = TaskVectors(delta[None], torch.zeros_like(delta), [])
    (rule,) = getattr(vectors, how)(*([share] for share in shares))
    return rule.keep(delta.abs())


def test_breadcrumbs_drops_the_outliers_and_the_smallest_hand_computed():
    tensor = torch.tensor([0.1, -5.0, 2.0, 0.5, -1.0, 3.0])
    assert kept("band", tensor, 0.5, 1 / 6).tolist() == [False, False, True, False, True, True]
    # Outliers and density overlap (2 + 5 > 6): as in mergekit, fewer outliers are dropped.
    from mergekit.sparsify import magnitude_outliers

    overlapping = kept("band", tensor, 5 / 6, 2 / 6).tolist()
    assert overlapping == [True] + [False] + [True] * 4
    assert overlapping == (magnitude_outliers(tensor, 5 / 6, gamma=2 / 6) != 0).tolist()


def test_equal_magnitudes_at_a_cutoff_go_as_mergekits_sorts_made_stable_leave_them():
    """TIES keeps the first k of a descending sort: the earlier of equal entries at its
    cutoff. Breadcrumbs keeps a window of an ascending sort: at either end, the later."""
    ties = torch.tensor([1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 0.0])
    assert kept("largest", ties, 0.5).tolist() == [
        True,
        True,
        False,
        True,
        False,
        True,
        False,
        False,
    ]
    # Drop one of the three 2s (the last), then keep four: the other two 2s and the last two 1s.
    assert kept("band", ties, 0.5, 1 / 8).tolist() == [
        False, True, False, True, True, False, True, False
    ]  # fmt: skip
    cutoff = top(ties, 4)
    signed = torch.tensor([-1.0, 2.0, 1.0, -2.0, 1.0, 2.0, -1.0, 0.0])
    cutoff.thin_(signed)
    assert signed.tolist() == [-1.0, 2.0, 0.0, -2.0, 0.0, 2.0, 0.0, 0.0]


@pytest.mark.parametrize("count", [1000, 2**19 + 3])  # sorted whole, and bracketed
def test_ties_and_breadcrumbs_keep_what_mergekit_keeps_with_its_sorts_made_stable(
    count, monkeypatch
):
    """On a task vector whose magnitudes tie by the thousand, as bf16 ones do, the very
    entries mergekit 0.1.5 keeps once its sorts are stable (unstable, it keeps as many, and
    picks among the tied ones by its sort's internals)."""
    from mergekit import sparsify

    generator = torch.Generator().manual_seed(count)
    magnitudes = torch.randint(1, 7, (count,), generator=generator).float() / 256
    signs = torch.randint(0, 2, (count,), generator=generator).float() * 2 - 1
    delta = magnitudes * signs
    ours = [kept("largest", delta, 0.3), kept("band", delta, 0.5, 0.05)]
    sort, argsort = torch.sort, torch.argsort
    monkeypatch.setattr(torch, "sort", partial(sort, stable=True))
    monkeypatch.setattr(torch, "argsort", partial(argsort, stable=True))
    theirs = [
        sparsify.magnitude(delta, 0.3) != 0,
        sparsify.magnitude_outliers(delta, 0.5, gamma=0.05) != 0,
    ]
    for mine, mergekits in zip(ours, theirs, strict=True):
        assert torch.equal(mine, mergekits)


def stable_top(values: torch.Tensor, k: int) -> torch.Tensor:
    expected = torch.zeros(values.numel(), dtype=torch.bool)
    expected[torch.sort(values, descending=True, stable=True).indices[:k]] = True
    return expected


@pytest.mark.parametrize(
    ("distinct", "k"),
    [
        *[(1000, k) for k in (1, 175_000, 375_000, 2**19 - 1)],
        *[(8, k) for k in (225_000, 2**18 - 1250, 2**18 + 1250)],  # brackets over 1 or 2 ties
        (0, 3),  # a bracket that misses: selected over all entries
    ],
)
def test_the_bracketed_selection_of_a_large_tensor_is_exact(distinct, k):
    """Exact whichever way the bracket goes: many distinct values (entries inside the bracket
    are kept), a few each tied by thousands (counts at its ends), continuous (0: normal)."""
    generator = torch.Generator().manual_seed(k)
    count = 2**19  # above 4 × SAMPLE: bracketed
    if distinct:
        values = torch.randint(0, distinct, (count,), generator=generator).float()
    else:
        values = torch.randn(count, generator=generator).abs()
    expected = stable_top(values, k)
    cutoff = top(values, k)
    assert cutoff.threshold == torch.sort(values, descending=True).values[k - 1]
    assert torch.equal(cutoff.keep(values), expected)
    # Part by part, as the engine tests them, and thinned as the engine thins them.
    parts = [cutoff.keep(values[p], p.start) for p in chunks(count)]
    assert torch.equal(torch.cat(parts), expected)
    signed = values * torch.where(torch.arange(count) % 2 == 0, 1.0, -1.0)
    expected_thinned = signed * expected
    for part in chunks(count):
        cutoff.thin_(signed[part], part.start)
    assert torch.equal(signed, expected_thinned)


@pytest.mark.parametrize(("count", "k"), [(524_290, 249_318), (524_289, 276_137)])
def test_a_tied_value_the_sample_takes_for_the_cutoff_wrongly_is_still_exact(count, k):
    """5 % of the entries tie at 0.5 and the k-th largest is just above them (or just below):
    with these sizes the seeded sample puts the cutoff inside the tie, the counts at it show
    that it is not, and the entries inside the bracket give the answer."""
    generator = torch.Generator().manual_seed(0)
    values = torch.rand(count, generator=generator)
    values[torch.randperm(count, generator=generator)[: count // 20]] = 0.5
    cutoff = top(values, k)
    assert cutoff.threshold != 0.5
    assert torch.equal(cutoff.keep(values), stable_top(values, k))


def test_the_selections_of_several_task_vectors_share_their_passes_and_stay_exact():
    generator = torch.Generator().manual_seed(0)
    rows = torch.stack(
        [
            torch.randint(0, 6, (2**19,), generator=generator).float(),  # ties at the ends
            torch.randn(2**19, generator=generator).abs(),  # inside the bracket
            torch.zeros(2**19),  # a task vector that is all 0
        ]
    )
    ks = [150_000, 262_144, 1000]
    cutoffs = selection.tops(rows_of(rows), 2**19, ks)
    for row, k, cutoff in zip(rows, ks, cutoffs, strict=True):
        assert torch.equal(cutoff.keep(row), stable_top(row, k))


def test_dare_keeps_its_density_in_share_and_the_task_vector_in_expectation():
    base, model = torch.zeros(200_000), torch.randn(200_000)
    vectors = TaskVectors(model[None], base, [torch.Generator().manual_seed(1)])
    (rule,) = vectors.drawn([0.3])
    assert abs(rule.mask.float().mean().item() - 0.3) < 0.005
    magnitudes = model.abs()
    (factor,) = l1_factors(rows_of(magnitudes[None]), model.numel(), [rule])
    rescaled = model * rule.mask * factor
    assert torch.isclose(rescaled.abs().sum(), model.abs().sum())
    merged = vector_merge("dare_linear", base, [model], [1.0], densities=[0.3], rescale=True)
    assert abs((merged / model).nanmean().item() - 1) < 0.02  # kept entries scaled by ~1/0.3
    same = vector_merge("dare_linear", base, [model], [1.0], densities=[0.3], rescale=True)
    assert torch.equal(merged, same), "the same seed drops the same entries"


def test_dare_at_full_density_is_task_arithmetic():
    base, a, b = torch.randn(3, 8), torch.randn(3, 8), torch.randn(3, 8)
    dare = vector_merge("dare_linear", base, [a, b], [0.7, 0.3], rescale=True)
    arithmetic = vector_merge("task_arithmetic", base, [a, b], [0.7, 0.3])
    assert torch.allclose(dare, arithmetic)


# --- parameters: gradients over depth and rules by name --------------------------------------


def test_gradients_and_rules_resolve_as_mergekit_does():
    from mergekit.config import ConditionalParameter, evaluate_setting

    settings = [
        0.3,
        [0.0, 1.0],
        [1.0, 0.2, 0.6],
        [0.1, 0.9, 0.4, 0.5],
        [{"filter": "mlp", "value": [0.2, 0.8]}, {"value": 0.5}],
        [{"filter": "self_attn", "value": 0.7}],
    ]
    names = [
        "model.embed_tokens.weight",
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.1.self_attn.q_proj.weight",
        "model.layers.2.mlp.down_proj.weight",
        "model.layers.3.input_layernorm.weight",
        "model.norm.weight",
    ]
    for setting in settings:
        theirs_setting = (
            [ConditionalParameter(**rule) for rule in setting]
            if isinstance(setting, list) and isinstance(setting[0], dict)
            else setting
        )
        for name in names:
            t = parameters.depth(name, layers=4)
            ours = parameters.evaluate(setting, name, t)
            theirs = evaluate_setting(name, theirs_setting, t, validate=float)
            assert ours == pytest.approx(theirs), (setting, name)
    assert parameters.depth("model.layers.3.mlp.up_proj.weight", layers=4) == 1.0
    assert parameters.depth("lm_head.weight", layers=4) == 0.0


# --- tiny models on disk ----------------------------------------------------------------------


# The tiny models' shape (layers apart).
TINY = {"vocab_size": 64, "hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2,
        "num_key_value_heads": 2}  # fmt: skip


def save_llama(
    folder: Path,
    state: dict[str, torch.Tensor] | None = None,
    dtype: torch.dtype = torch.float32,
    **overrides,
) -> dict:
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = TINY | {"num_hidden_layers": 3, "tie_word_embeddings": False}
    config = LlamaConfig(**(shape | overrides))
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    if state is not None:
        model.load_state_dict(state)
    model.to(dtype).save_pretrained(folder)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="session")
def llamas(tmp_path_factory) -> Path:
    """A base and three models fine-tuned from it (the base plus seeded noise), as a study's
    models folder: models/base/seed-0, models/sft/{a,b,c}/seed-0."""
    root = tmp_path_factory.mktemp("llamas")
    base = save_llama(at(root, "base"))
    for seed, name in enumerate("abc", start=1):
        noise = torch.Generator().manual_seed(seed)
        tuned = {k: v + 0.05 * torch.randn(v.shape, generator=noise) for k, v in base.items()}
        save_llama(at(root, f"sft/{name}"), tuned)
    return root


@pytest.fixture(scope="session")
def bf16_llamas(tmp_path_factory) -> Path:
    """As `llamas`, in bf16, with fine-tuning-sized noise: task vectors of a few bf16 steps,
    whose magnitudes tie by the hundred (the norms' are all 0)."""
    root = tmp_path_factory.mktemp("bf16_llamas")
    base = save_llama(at(root, "base"), dtype=torch.bfloat16)
    for seed, name in enumerate("abc", start=1):
        noise = torch.Generator().manual_seed(seed)
        tuned = {
            k: (v.float() + 0.002 * torch.randn(v.shape, generator=noise)).to(torch.bfloat16)
            for k, v in base.items()
        }
        save_llama(at(root, f"sft/{name}"), tuned, dtype=torch.bfloat16)
    return root


RUNS = ("a", "b", "c", "odd", "mistral", "nope", "bad")


def at(root: Path, ref: str) -> Path:
    """A model's folder as the study keeps it (the base's, or a run's replicate of seed 0)."""
    return paths.folder(ref, 0, root)


def params_with(merges: dict, seeds: tuple[int, ...] = (0,)):
    """Params declaring the models these tests merge (as SFT runs) and `merges`."""
    world = {"kind": "builtin", "eval": {"general": 1}, "train": {"general": 4}}
    phase = {"learning_rate": 1.0e-3}
    raw = {
        "languages": ["en"],
        "seeds": list(seeds),
        "data": {"sources": {"w": world}},
        "mixtures": {"m": {"safety": 0.0, "size_per_language": 4}},
        "base": {"kind": "hf", "path": "models/base"},
        "train": {"sft": phase, "dpo": phase},
        "sft": {run: {"mixture": "m", "init": "base"} for run in RUNS},
        "merges": merges,
        # What these tests merge has no held-out answers: tests/test_mergeability.py measures
        # the path between models.
        "mergeability": {"enabled": False},
    }
    return validate_params(raw)


def run_ours(root: Path, name: str, spec: dict, **kwargs) -> dict[str, torch.Tensor]:
    with inside(root):
        merge_stage.run(params_with({name: spec}), name, **kwargs)
    return load_merged(at(root, f"merge/{name}"))


def load_merged(folder: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for file in sorted(folder.glob("*.safetensors")):
        tensors |= load_file(file)
    return tensors


def run_mergekit(root: Path, name: str, out: Path) -> dict[str, torch.Tensor]:
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    config = exported(root, name)

    def absolute(path: str) -> str:
        return str(root / path)

    config["models"] = [m | {"model": absolute(m["model"])} for m in config["models"]]
    if "base_model" in config:
        config["base_model"] = absolute(config["base_model"])
    options = MergeOptions(copy_tokenizer=False, write_model_card=False, random_seed=0, quiet=True)
    run_merge(MergeConfiguration.model_validate(config), str(out), options=options)
    return load_merged(out)


PAIR = [{"model": "sft/a"}, {"model": "sft/b"}]
TRIO = [*PAIR, {"model": "sft/c"}]
AGREEING = {
    "linear": {
        "method": "linear",
        "stage": "sft",
        "models": [{"model": "sft/a", "weight": 0.3}, {"model": "sft/b", "weight": 0.7}],
    },
    "slerp": {
        "method": "slerp",
        "stage": "sft",
        "base": "sft/a",
        "models": PAIR,
        "parameters": {"t": [0.2, 0.9]},
    },
    "task_arithmetic": {
        "method": "task_arithmetic",
        "stage": "sft",
        "base": "base",
        "models": TRIO,
        "parameters": {"weight": 0.6, "lambda": 0.8},
    },
    "ties": {
        "method": "ties",
        "stage": "sft",
        "base": "base",
        "models": [
            {"model": "sft/a", "weight": [1.0, 0.2]},
            {"model": "sft/b", "density": 0.3},
            {"model": "sft/c"},
        ],
        "parameters": {"weight": 0.5, "density": [{"filter": "mlp", "value": 0.4}, {"value": 0.7}]},
    },
    "breadcrumbs_ties": {
        "method": "breadcrumbs_ties",
        "stage": "sft",
        "base": "base",
        "models": [{"model": "sft/a", "gamma": 0.2}, {"model": "sft/b"}, {"model": "sft/c"}],
        "parameters": {"weight": 0.5, "density": 0.6, "gamma": 0.05},
    },
    "sce": {
        "method": "sce",
        "stage": "sft",
        "base": "base",
        "models": TRIO,
        "parameters": {"select_topk": 0.3},
    },
}


@pytest.mark.parametrize("method", list(AGREEING))
def test_agrees_with_mergekit_within_a_millionth(llamas, tmp_path, method):
    ours = run_ours(llamas, method, AGREEING[method])
    theirs = run_mergekit(llamas, method, tmp_path / "mergekit")
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.allclose(ours[name], theirs[name], atol=1e-6, rtol=0), name


DARE_OF_A = {
    "method": "dare_linear",
    "stage": "sft",
    "base": "base",
    "models": [{"model": "sft/a"}],
}


def test_dare_agrees_with_mergekit_in_kept_share_and_in_expectation(llamas, tmp_path):
    spec = DARE_OF_A | {"parameters": {"density": 0.4}}
    base = load_merged(at(llamas, "base"))
    tuned = load_merged(at(llamas, "sft/a"))
    ours = run_ours(llamas, "dare", spec)
    theirs = run_mergekit(llamas, "dare", tmp_path / "mergekit")
    for merged in (ours, theirs):
        kept = sum(int((merged[n] != base[n]).sum()) for n in base)
        entries = sum(t.numel() for t in base.values())
        # Binomial: 4 standard deviations of the kept share for this many entries.
        assert abs(kept / entries - 0.4) < 4 * math.sqrt(0.4 * 0.6 / entries)
        # Kept entries are the task vector scaled up: about 1 / density in L1 norm.
        for name in ("model.layers.1.mlp.up_proj.weight", "model.embed_tokens.weight"):
            delta, moved = tuned[name] - base[name], merged[name] - base[name]
            assert moved.abs().sum() / delta.abs().sum() == pytest.approx(1.0, rel=1e-4)


# --- a method is its definition ----------------------------------------------------------------


@pytest.fixture
def halfway():
    """A method defined here, as a new one is in mixmerge/merging/methods.py."""

    @merge_method("a test's own method")
    def halfway(vectors: TaskVectors, weight: PerModel[float] = 1.0, share: Share = 0.5) -> Parts:
        """`share` of the way along the weighted mean of the task vectors."""
        return vectors.merged(weight, normalize=True, scale=share)

    yield METHODS["halfway"]
    del METHODS["halfway"]


def test_a_method_defined_in_one_place_is_validated_merged_exported_and_documented(halfway, llamas):
    spec = {"method": "halfway", "stage": "sft", "base": "base", "models": PAIR}
    with pytest.raises(ParamsError) as refused:
        params_with({"m": spec | {"parameters": {"share": 1.5, "t": 0.5}}})
    assert "every share must be in (0, 1]" in str(refused.value)
    assert "halfway takes no parameter `t`" in str(refused.value)
    ours = run_ours(llamas, "halfway", spec | {"models": [PAIR[0] | {"weight": 3.0}, PAIR[1]]})
    base, a, b = (load_merged(at(llamas, ref)) for ref in ("base", "sft/a", "sft/b"))
    for name in base:
        expected = base[name] + 0.5 * (3 * (a[name] - base[name]) + (b[name] - base[name])) / 4
        assert torch.allclose(ours[name], expected, atol=1e-6), name
    recipe = yaml.safe_load((at(llamas, "merge/halfway") / "merge.yaml").read_text())
    assert recipe["reference"] == "a test's own method"
    assert [m["weight"] for m in recipe["models"]] == [3.0, 1.0]
    assert recipe["parameters"] == {"share": 0.5}
    assert "| `halfway` | `share` of the way along" in method_table()
    assert "`share` (default 0.5; in (0, 1])" in method_table()


def test_the_docs_method_table_is_the_definitions_and_the_cli_prints_it():
    docs = (REPO / "docs" / "merge-methods.md").read_text(encoding="utf-8")
    assert method_table() in docs, "docs/merge-methods.md: paste in what `mixmerge methods` prints"
    printed = CliRunner().invoke(app, ["methods"])
    assert printed.exit_code == 0 and printed.output == method_table()


# --- the engine and the stage -----------------------------------------------------------------


def test_a_merge_is_a_loadable_model_with_its_recipe_and_diagnostics(llamas):
    from transformers import AutoModelForCausalLM

    spec = AGREEING["ties"]
    run_ours(llamas, "recipe", spec)
    folder = at(llamas, "merge/recipe")
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert type(model).__name__ == "LlamaForCausalLM"
    recipe = yaml.safe_load((folder / "merge.yaml").read_text())
    assert recipe["method"] == "ties" and recipe["parameters"]["normalize"] is True
    assert recipe["models"][1] | {"path": None} == {
        "model": "sft/b",
        "path": None,
        "weight": 0.5,
        "density": 0.3,
    }
    diagnostics = json.loads((folder / "diagnostics.json").read_text())
    assert set(diagnostics["layers"]) == {"0", "1", "2", "other"}
    layer = diagnostics["layers"]["1"]
    assert set(layer["norms"]) == {"sft/a", "sft/b", "sft/c"}
    assert -1 <= layer["cosine"]["sft/a | sft/b"] <= 1 and 0 <= layer["sign_conflicts"] <= 1
    summary = json.loads((llamas / "reports" / "merges" / "recipe.json").read_text())
    overall = summary["seeds"]["seed-0"]
    assert overall["sign_conflicts"] == diagnostics["overall"]["sign_conflicts"]
    assert recipe["training_seed"] == 0
    layers = json.loads((llamas / "reports/merges/recipe/seed-0.json").read_text())
    assert [row["layer"] for row in layers] == [0, 1, 2]
    assert layers[1]["sign_conflicts"] == pytest.approx(layer["sign_conflicts"], abs=1e-6)


def test_the_same_recipe_and_seed_give_the_same_bytes(llamas):
    spec = {
        "method": "dare_ties",
        "stage": "sft",
        "base": "base",
        "models": PAIR,
        "parameters": {"density": 0.5},
        "seed": 7,
    }
    first = (run_ours(llamas, "dare_a", spec), at(llamas, "merge/dare_a") / "model.safetensors")
    second = (run_ours(llamas, "dare_b", spec), at(llamas, "merge/dare_b") / "model.safetensors")
    assert first[1].read_bytes() == second[1].read_bytes()
    other = run_ours(llamas, "dare_c", spec | {"seed": 8})
    assert not torch.equal(
        other["model.layers.0.mlp.up_proj.weight"], first[0]["model.layers.0.mlp.up_proj.weight"]
    )


def test_the_bytes_and_the_diagnostics_do_not_depend_on_the_number_of_threads(llamas, tmp_path):
    from mixmerge.merging.diagnostics import Interference

    base = read_weights(at(llamas, "base"))
    inputs = [read_weights(at(llamas, f"sft/{n}")) for n in "abc"]
    settings = {"weight": 0.5, "density": 0.4}
    job = Job(METHODS["ties"], inputs, [{}] * 3, settings, base, 0, None)
    made = []
    for workers in (1, 3):
        out = tmp_path / str(workers)
        out.mkdir()
        interference = Interference(["a", "b", "c"])
        engine.run(job, out, 5_000, interference.observe, workers=workers)
        files = {f.name: f.read_bytes() for f in sorted(out.iterdir())}
        made.append((files, json.dumps(interference.report())))
    assert len(made[0][0]) > 2 and made[0] == made[1]


def test_sharded_output_has_an_index_and_the_chosen_dtype(llamas):
    from transformers import AutoModelForCausalLM

    spec = AGREEING["linear"] | {"out_dtype": "bfloat16"}
    merged = run_ours(llamas, "sharded", spec, max_shard_bytes=5_000)
    folder = at(llamas, "merge/sharded")
    shards = sorted(folder.glob("model-*-of-*.safetensors"))
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert len(shards) > 1 and set(index["weight_map"]) == set(merged)
    assert {t.dtype for t in merged.values()} == {torch.bfloat16}
    assert json.loads((folder / "config.json").read_text())["dtype"] == "bfloat16"
    AutoModelForCausalLM.from_pretrained(folder)
    whole = run_ours(llamas, "whole", AGREEING["linear"])
    assert all(torch.equal(merged[n], whole[n].to(torch.bfloat16)) for n in whole)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_size": 32}, "has shape"),
        ({"vocab_size": 80}, "vocab_size differ"),
        ({"tie_word_embeddings": True}, "lm_head.weight is in"),
    ],
)
def test_models_that_do_not_fit_together_are_refused_before_writing(
    llamas, tmp_path, change, message
):
    root = tmp_path / "root"
    for ref in ("base", "sft/a"):
        at(root, ref).parent.mkdir(parents=True, exist_ok=True)
        at(root, ref).symlink_to(at(llamas, ref))
    save_llama(at(root, "sft/odd"), **change)
    spec = {
        "method": "linear",
        "stage": "sft",
        "models": [{"model": "sft/a"}, {"model": "sft/odd"}],
    }
    with pytest.raises(StageError, match=message):
        run_ours(root, "odd", spec)
    assert not (root / "models" / "merge").exists()


def test_other_architectures_and_gradients_summing_to_zero_are_refused(llamas, tmp_path):
    from transformers import MistralConfig, MistralForCausalLM

    mistral = MistralForCausalLM(MistralConfig(**TINY, num_hidden_layers=3))
    mistral.save_pretrained(at(llamas, "sft/mistral"))
    spec = {
        "method": "linear",
        "stage": "sft",
        "models": [{"model": "sft/a"}, {"model": "sft/mistral"}],
    }
    with pytest.raises(StageError, match="architectures differ"):
        run_ours(llamas, "crossbreed", spec)
    zero = {
        "method": "linear",
        "stage": "sft",
        "models": [
            {"model": "sft/a", "weight": [1.0, -1.0]},
            {"model": "sft/b", "weight": [-1.0, 1.0]},
        ],
    }
    with pytest.raises(StageError, match="sum to zero"):
        run_ours(llamas, "zero", zero)
    assert not (llamas / "models" / "merge" / "crossbreed").exists()
    assert not (llamas / "models" / "merge" / "zero").exists()


def test_each_seed_merges_the_replicates_of_that_seed(llamas, tmp_path):
    """Replicates are paired by training seed: seed 1's merge is the merge of the seed-1
    replicates, and DARE draws other drops for another seed even from the same inputs."""
    root = tmp_path / "root"
    at(root, "base").parent.mkdir(parents=True)
    for seed in (0, 1):  # each seed's chain starts from a base of its own: here the same one
        paths.folder("base", seed, root).symlink_to(at(llamas, "base"))
    base = load_merged(at(root, "base"))
    for name, offset in (("a", 0.1), ("b", -0.1)):
        for seed in (0, 1):
            shifted = {k: v + offset * (seed + 1) for k, v in base.items()}
            save_llama(paths.folder(f"sft/{name}", seed, root), shifted)
    linear = {
        "method": "linear",
        "stage": "sft",
        "models": [{"model": "sft/a"}, {"model": "sft/b", "weight": 3.0}],
    }  # noqa: E501
    with inside(root):
        summary = merge_stage.run(params_with({"lin": linear}, seeds=(0, 1)), "lin")
    assert set(summary["seeds"]) == {"seed-0", "seed-1"}
    for seed in (0, 1):
        merged = load_merged(paths.folder("merge/lin", seed, root))
        a, b = (load_merged(paths.folder(f"sft/{n}", seed, root)) for n in "ab")
        for name in base:
            assert torch.allclose(merged[name], (a[name] + 3 * b[name]) / 4, atol=1e-6)
    same = DARE_OF_A | {"parameters": {"density": 0.5}}
    for seed in (0, 1):
        save_llama(paths.folder("sft/a", seed, root), {k: v + 0.5 for k, v in base.items()})
    with inside(root):
        merge_stage.run(params_with({"dare": same}, seeds=(0, 1)), "dare")
    drops = [load_merged(paths.folder("merge/dare", s, root)) for s in (0, 1)]
    name = "model.layers.0.mlp.up_proj.weight"
    assert not torch.equal(drops[0][name], drops[1][name])


def test_a_missing_input_says_which_stage_makes_it(llamas):
    spec = {
        "method": "linear",
        "stage": "sft",
        "models": [{"model": "sft/a"}, {"model": "sft/nope"}],
    }
    raw_params = params_with({"m": spec})
    with inside(llamas), pytest.raises(StageError, match=r"run `dvc repro sft@nope` first"):
        merge_stage.run(raw_params, "m")


def test_a_missing_base_says_to_build_the_base(llamas, tmp_path):
    shutil.copytree(llamas / "models/sft", tmp_path / "models/sft")
    spec = {"method": "ties", "stage": "sft", "base": "base", "models": [{"model": "sft/a"}]}
    with inside(tmp_path), pytest.raises(StageError, match=r"run `dvc repro base` first"):
        merge_stage.run(params_with({"m": spec}), "m")


def test_the_tiny_cohere_base_merges_with_itself_into_itself(tmp_path):
    from mixmerge.config.base_model import BuiltinArchitectureConfig
    from mixmerge.training.model import build_cohere
    from mixmerge.training.tokenizer import train_tokenizer

    tokenizer = train_tokenizer(["a small corpus", "of a few words"] * 20, vocab_size=300)
    shape = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2}
    shape |= {"num_key_value_heads": 2, "intermediate_size": 32}
    model = build_cohere(BuiltinArchitectureConfig(**shape), tokenizer, seed=0)
    for ref in ("base", "sft/a"):
        model.save_pretrained(at(tmp_path, ref))
        tokenizer.save_pretrained(at(tmp_path, ref))
    itself = [{"model": "sft/a"}, {"model": "sft/a"}]
    halfway = {"t": 0.5}
    specs = {
        "linear": {"method": "linear", "stage": "sft", "models": itself},
        "slerp": {
            "method": "slerp",
            "stage": "sft",
            "base": "sft/a",
            "models": itself,
            "parameters": halfway,
        },
        "ties": {"method": "ties", "stage": "sft", "base": "base", "models": itself[:1]},
    }
    original = load_file(at(tmp_path, "sft/a") / "model.safetensors")
    for method, spec in specs.items():
        merged = run_ours(tmp_path, method, spec)
        assert all(torch.equal(merged[n], original[n]) for n in original), method
    assert (at(tmp_path, "merge/ties") / "chat_template.jinja").is_file()


# --- inputs checked against their headers -------------------------------------------------------


def rewrite_header(file: Path, change) -> None:
    """Rewrite a safetensors file's header through `change(header)`, keeping its data."""
    raw = file.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    change(header)
    encoded = json.dumps(header).encode()
    file.write_bytes(struct.pack("<Q", len(encoded)) + encoded + raw[8 + length :])


def overlap(header: dict) -> None:
    header["model.layers.1.mlp.up_proj.weight"]["data_offsets"] = header[
        "model.layers.0.mlp.up_proj.weight"
    ]["data_offsets"]


def truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


CORRUPTIONS = {
    # A copy of a model cut in half: a linear merge of it used to write garbage and exit 0.
    "truncated": (truncate, r"tensor \S+: its bytes \d+\.\.\d+ are not inside"),
    "overlapping": (
        lambda f: rewrite_header(f, overlap),
        "tensors model.layers.0.mlp.up_proj.weight and model.layers.1.mlp.up_proj.weight overlap",
    ),
    "wrong size": (
        lambda f: rewrite_header(f, lambda h: h["model.norm.weight"].update(shape=[17])),
        r"tensor model.norm.weight: it has 64 bytes, and F32 × \[17\] needs 68",
    ),
    "unknown dtype": (
        lambda f: rewrite_header(f, lambda h: h["model.norm.weight"].update(dtype="F8_E4M3")),
        "tensor model.norm.weight: dtype 'F8_E4M3' is not one of",
    ),
    "header past the end": (
        lambda f: f.write_bytes(struct.pack("<Q", 10**6) + f.read_bytes()[8:100]),
        "its header claims 1000000 bytes",
    ),
    "not JSON": (
        lambda f: f.write_bytes(f.read_bytes()[:8] + b"\xff" * 64 + f.read_bytes()[72:]),
        "its header is not JSON",
    ),
}


def with_a_copy(llamas: Path, root: Path, ref: str = "sft/bad") -> Path:
    """`root` holding the base and sft/a of `llamas` (linked) and a copy of sft/a as `ref`;
    the copy's weights file."""
    for linked in ("base", "sft/a"):
        at(root, linked).parent.mkdir(parents=True, exist_ok=True)
        at(root, linked).symlink_to(at(llamas, linked))
    shutil.copytree(at(llamas, "sft/a"), at(root, ref))
    return at(root, ref) / "model.safetensors"


LINEAR_WITH_THE_COPY = {
    "method": "linear",
    "stage": "sft",
    "models": [{"model": "sft/a"}, {"model": "sft/bad"}],
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_corrupt_input_is_refused_naming_it_before_anything_is_written(
    llamas, tmp_path, corruption
):
    corrupt, message = CORRUPTIONS[corruption]
    file = with_a_copy(llamas, tmp_path)
    corrupt(file)
    with pytest.raises(StageError, match=message) as error:
        run_ours(tmp_path, "bad", LINEAR_WITH_THE_COPY)
    assert str(file.relative_to(tmp_path)) in str(error.value)
    assert not (tmp_path / "models" / "merge").exists()
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("method", ["linear", "ties"])
def test_an_input_holding_nan_or_infinity_is_refused_naming_its_file_and_tensor(
    llamas, tmp_path, value, method
):
    """A NaN or an infinity in one entry of one input: the merge (top-k selection too) names
    the file and the tensor and leaves no output."""
    from safetensors.torch import load_file, save_file

    file = with_a_copy(llamas, tmp_path)
    tensors = load_file(file)
    tensors["model.layers.1.mlp.up_proj.weight"][3, 5] = value
    save_file(tensors, file, metadata={"format": "pt"})
    spec = LINEAR_WITH_THE_COPY | (
        {"method": method, "base": "base", "parameters": {"density": 0.5}}
        if method == "ties"
        else {}
    )
    expected = r"sft/bad/seed-0/model\.safetensors: tensor model\.layers\.1\.mlp\.up_proj\.weight"
    with pytest.raises(StageError, match=expected + " holds NaN or infinite values"):
        run_ours(tmp_path, "bad", spec)
    assert list((tmp_path / "models" / "merge").iterdir()) == []


def test_a_merge_copies_only_the_template_models_own_files(llamas, tmp_path):
    """Beside its weights, a merge takes its template model's config, generation settings,
    tokenizer and chat template, and nothing else the folder holds: a stray adapter's config
    would make a loader that knows PEFT read the merge as an adapter."""
    template = with_a_copy(llamas, tmp_path).parent
    (template / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    (template / "diagnostics.json").write_text("{}")
    (template / "chat_template.jinja").write_text("{{ messages }}")
    run_ours(tmp_path, "bad", {**LINEAR_WITH_THE_COPY, "diagnostics": False,
                               "models": [{"model": "sft/bad"}, {"model": "sft/a"}]})  # fmt: skip
    merged = {file.name for file in at(tmp_path, "merge/bad").iterdir()}
    assert {"config.json", "generation_config.json", "chat_template.jinja"} <= merged
    assert not {"adapter_config.json", "diagnostics.json"} & merged


def test_a_file_cut_short_after_it_was_checked_fails_the_merge_and_leaves_no_output(
    llamas, tmp_path, monkeypatch
):
    file = with_a_copy(llamas, tmp_path)
    checked = check_compatible

    def check_then_truncate(weights):  # the file changes between inspection and merge
        checked(weights)
        truncate(file)

    monkeypatch.setattr(replicates, "check_compatible", check_then_truncate)
    with pytest.raises(StageError, match=r"tensor \S+ is cut short") as error:
        run_ours(tmp_path, "bad", LINEAR_WITH_THE_COPY)
    assert str(file.relative_to(tmp_path)) in str(error.value)
    assert list((tmp_path / "models" / "merge").iterdir()) == []
    assert not (tmp_path / "reports").exists()


def save_sharded(folder: Path) -> dict[str, torch.Tensor]:
    """A tiny Llama saved in several shards with an index; its tensors."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**TINY, num_hidden_layers=2)
    LlamaForCausalLM(config).save_pretrained(folder, max_shard_size="10KB")
    return load_merged(folder)


def test_the_weights_are_the_files_the_index_names_or_model_safetensors(tmp_path):
    from safetensors.torch import save_file

    sharded = tmp_path / "sharded"
    tensors = save_sharded(sharded)
    stray = {"base_model.model.lm_head.lora_A.weight": torch.zeros(2, 16)}
    save_file(stray, sharded / "adapter_model.safetensors")  # an adapter's: not the model's
    assert read_weights(sharded).tensors.keys() == tensors.keys()
    single = tmp_path / "single"
    save_llama(single)
    save_file(stray, single / "adapter_model.safetensors")
    assert read_weights(single).tensors.keys() == load_file(single / "model.safetensors").keys()
    (sharded / "model.safetensors.index.json").unlink()
    with pytest.raises(StageError, match="several safetensors files .* and no model.safetensors"):
        read_weights(sharded)


def test_an_index_that_does_not_match_its_shards_is_refused(tmp_path):
    folder = tmp_path / "sharded"
    save_sharded(folder)
    index_file = folder / "model.safetensors.index.json"
    index = json.loads(index_file.read_text())
    shards = sorted(set(index["weight_map"].values()))
    files = list(index["weight_map"].values())
    # A tensor of a later shard that holds others too (so that the shard stays in the index).
    moved = next(n for n, f in index["weight_map"].items() if f != shards[0] and files.count(f) > 1)
    wrong = json.loads(json.dumps(index))
    wrong["weight_map"][moved] = shards[0]
    index_file.write_text(json.dumps(wrong))
    with pytest.raises(StageError, match=f"puts tensor {moved} in {shards[0]}, which does not"):
        read_weights(folder)
    del wrong["weight_map"][moved]
    index_file.write_text(json.dumps(wrong))
    with pytest.raises(StageError, match=f"has tensor {moved}, which .* does not put there"):
        read_weights(folder)
    index_file.write_text(json.dumps(index))
    (folder / shards[-1]).unlink()
    with pytest.raises(StageError, match=f"names shard {shards[-1]}, which is not in"):
        read_weights(folder)


# --- bf16 inputs: ties at the cutoff, and the output's dtype in mergekit.yaml ------------------


def moved_share(merged: dict[str, torch.Tensor], base: dict[str, torch.Tensor]) -> float:
    moved = sum(int(torch.count_nonzero(merged[n] != base[n])) for n in base)
    return moved / sum(t.numel() for t in base.values())


def test_ties_on_bf16_task_vectors_with_many_ties_keeps_as_many_as_mergekit(bf16_llamas, tmp_path):
    density = 0.3
    spec = {
        "method": "ties",
        "stage": "sft",
        "base": "base",
        "models": TRIO,
        "parameters": {"weight": 0.5, "density": density},
    }
    base = load_merged(at(bf16_llamas, "base"))
    tuned = load_merged(at(bf16_llamas, "sft/a"))
    ties = 0  # entries that tie with the last one kept but are not needed to reach k
    for name in base:
        magnitudes = (tuned[name].float() - base[name].float()).abs().reshape(-1)
        k = max(1, int(density * magnitudes.numel()))
        ranked = torch.sort(magnitudes, descending=True).values
        ties += int(torch.count_nonzero(magnitudes == ranked[k - 1])) - 1
    entries = sum(t.numel() for t in base.values())
    assert ties > 0.01 * entries, "the test needs many ties at the cutoff"
    ours = run_ours(bf16_llamas, "bf16_ties", spec)
    theirs = run_mergekit(bf16_llamas, "bf16_ties", tmp_path / "mergekit")
    assert {t.dtype for t in (*ours.values(), *theirs.values())} == {torch.bfloat16}
    assert abs(moved_share(ours, base) - moved_share(theirs, base)) < 0.001
    assert moved_share(ours, base) > 0.25


def exported(root: Path, name: str) -> dict:
    return yaml.safe_load((at(root, f"merge/{name}") / "mergekit.yaml").read_text())


def test_mergekit_yaml_reproduces_the_output_dtype(bf16_llamas, tmp_path):
    spec = {
        "method": "task_arithmetic",
        "stage": "sft",
        "base": "base",
        "models": TRIO,
        "parameters": {"weight": 0.6, "lambda": 0.8},
    }
    ours = run_ours(bf16_llamas, "bf16_arithmetic", spec)
    config = exported(bf16_llamas, "bf16_arithmetic")
    assert (config["dtype"], config["out_dtype"]) == ("float32", "bfloat16")
    theirs = run_mergekit(bf16_llamas, "bf16_arithmetic", tmp_path / "mergekit")
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert ours[name].dtype == theirs[name].dtype == torch.bfloat16, name
        # Both round the same float32 result to bf16: they differ by a bf16 step at most.
        assert torch.allclose(ours[name].float(), theirs[name].float(), rtol=2**-7, atol=0), name
    as_float32 = run_ours(bf16_llamas, "bf16_to_float32", spec | {"out_dtype": "float32"})
    config = exported(bf16_llamas, "bf16_to_float32")
    assert config["out_dtype"] == "float32"
    assert {t.dtype for t in as_float32.values()} == {torch.float32}


# --- diagnostics: a switch, and cheap -----------------------------------------------------------


def test_diagnostics_switched_off_leave_the_model_and_empty_reports(llamas):
    run_ours(llamas, "loud", AGREEING["ties"])
    run_ours(llamas, "quiet", AGREEING["ties"] | {"diagnostics": False})
    loud, quiet = at(llamas, "merge/loud"), at(llamas, "merge/quiet")
    assert (loud / "diagnostics.json").is_file() and not (quiet / "diagnostics.json").exists()
    assert (loud / "model.safetensors").read_bytes() == (quiet / "model.safetensors").read_bytes()
    reports = llamas / "reports" / "merges"
    assert json.loads((reports / "quiet" / "seed-0.json").read_text()) == []
    summary = json.loads((reports / "quiet.json").read_text())
    assert summary == {"method": "ties", "stage": "sft", "seeds": {"seed-0": {}}}
    assert json.loads((reports / "loud" / "seed-0.json").read_text()) != []


def sign_shares(deltas: torch.Tensor) -> tuple[float, float]:
    """The shares of conflicting signs and of entries moved by two or more, by definition."""
    signs = deltas.sign()
    moved = (signs != 0).sum(dim=0) >= 2
    conflicts = moved & (signs > 0).any(dim=0) & (signs < 0).any(dim=0)
    return conflicts.sum().item() / moved.sum().item(), moved.sum().item() / deltas.shape[1]


def test_diagnostics_agree_with_a_float64_computation(llamas):
    """The streamed statistics of a merge against their definitions over whole tensors in
    float64 (the tensors are smaller than a part: every part is counted, and exact)."""
    run_ours(llamas, "measured", {"method": "ties", "stage": "sft", "base": "base", "models": TRIO})
    diagnostics = json.loads((at(llamas, "merge/measured") / "diagnostics.json").read_text())
    base = load_merged(at(llamas, "base"))
    tuned = [load_merged(at(llamas, f"sft/{n}")) for n in "abc"]
    layer = [n for n in base if ".layers.1." in n]
    deltas = torch.stack(
        [torch.cat([(t[n].double() - base[n].double()).reshape(-1) for n in layer]) for t in tuned]
    )
    figures = diagnostics["layers"]["1"]
    norms = deltas.norm(dim=1)
    assert list(figures["norms"].values()) == pytest.approx(norms.tolist(), rel=1e-6)
    cosine = float(deltas[0] @ deltas[1] / (norms[0] * norms[1]))
    assert figures["cosine"]["sft/a | sft/b"] == pytest.approx(cosine, abs=1e-6)
    assert figures["entries"] == figures["sampled_entries"] == deltas.shape[1]
    conflicts, moved = sign_shares(deltas)
    assert figures["sign_conflicts"] == pytest.approx(conflicts, abs=1e-12)
    assert figures["moved_by_two_or_more"] == pytest.approx(moved, abs=1e-12)
    assert figures["sign_conflicts_standard_error"] == 0


def test_the_sampled_shares_of_signs_are_within_the_errors_they_state():
    """A tensor of 64 parts whose task vectors agree more in its later parts: one part in
    `STRIDE` is counted, and the exact shares lie within 4 of the stated standard errors."""
    from mixmerge.merging.diagnostics import STRIDE, Interference

    generator = torch.Generator().manual_seed(0)
    count = 64 * CHUNK
    shared = torch.linspace(0.4, 0.6, count)  # how much of a common direction each entry has
    common = torch.randn(count, generator=generator)
    deltas = shared * common + (1 - shared) * torch.randn(3, count, generator=generator)
    deltas *= torch.rand(3, count, generator=generator) > 0.3  # some entries do not move
    interference = Interference(["a", "b", "c"])
    for part in chunks(count):
        interference.observe("model.layers.0.mlp.up_proj.weight", part.start, deltas[:, part])
    figures = interference.report()["layers"]["0"]
    assert figures["sampled_entries"] == count // STRIDE
    conflicts, moved = sign_shares(deltas)
    for key, exact in (("sign_conflicts", conflicts), ("moved_by_two_or_more", moved)):
        error = figures[f"{key}_standard_error"]
        assert 0 < error < 0.02 and abs(figures[key] - exact) < 4 * error, (key, error)


# --- messages that do not depend on the hash seed -----------------------------------------------


def test_a_refusal_names_the_models_in_params_order(llamas, tmp_path):
    root = tmp_path / "root"
    for ref in ("base", "sft/a"):
        at(root, ref).parent.mkdir(parents=True, exist_ok=True)
        at(root, ref).symlink_to(at(llamas, ref))
    save_llama(at(root, "sft/odd"), vocab_size=80)
    for first, second in (("sft/odd", "sft/a"), ("sft/a", "sft/odd")):
        spec = {"method": "linear", "stage": "sft", "models": [{"model": first}, {"model": second}]}
        with pytest.raises(StageError) as error:
            run_ours(root, "odd", spec)
        assert str(error.value).startswith(f"cannot merge {first} and {second}: their vocab_size")
