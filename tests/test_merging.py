"""Merging: the methods' arithmetic, the streaming engine, the merge stage, and agreement with
mergekit 0.1.5 (the reference the paper used) on tiny Llama models."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from stages import merge as merge_stage
from stages.core import models
from stages.core.config import validate_params
from stages.core.errors import StageError
from stages.merging import methods, parameters
from stages.merging.registry import METHODS
from tests.conftest import inside

# --- the methods, on small tensors -----------------------------------------------------------


def vector_merge(
    name, base, tensors, weights, densities=None, normalize=None, rescale=False, scale=1.0, seed=0
):
    method = METHODS[name]
    if normalize is None:
        normalize = method.merge_parameters["normalize"]
    return methods.task_vector_merge(
        method,
        base,
        tensors,
        weights,
        densities or [1.0] * len(tensors),
        [0.0] * len(tensors),
        normalize,
        rescale,
        scale,
        [torch.Generator().manual_seed(seed + i) for i in range(len(tensors))],
    )


TASK_VECTOR_METHODS = [n for n, m in METHODS.items() if m.computation == "task_vector"]


@pytest.mark.parametrize("name", TASK_VECTOR_METHODS)
def test_a_task_vector_merge_of_a_model_with_itself_is_itself(name):
    base, model = torch.randn(5, 7), torch.randn(5, 7)
    merged = vector_merge(name, base, [model, model], [0.5, 0.5])
    assert torch.allclose(merged, model, atol=1e-6)


def test_linear_and_slerp_of_a_model_with_itself_are_itself():
    model = torch.randn(4, 6)
    assert torch.allclose(methods.linear([model, model], [0.3, 0.7], normalize=True), model)
    assert torch.allclose(methods.slerp(0.4, model, model), model)


def test_slerp_ends_are_the_two_models_and_its_middle_stays_on_the_sphere():
    v0, v1 = torch.randn(3, 5), torch.randn(3, 5)
    assert torch.allclose(methods.slerp(0.0, v0, v1), v0, atol=1e-6)
    assert torch.allclose(methods.slerp(1.0, v0, v1), v1, atol=1e-6)
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    half = math.sqrt(0.5)
    assert torch.allclose(methods.slerp(0.5, e1, e2), torch.tensor([half, half]), atol=1e-6)
    nearly = e1 + 1e-6 * e2  # collinear: linear interpolation, not the unstable formula
    assert torch.allclose(methods.slerp(0.5, e1, nearly), (e1 + nearly) / 2)


def test_linear_weights_hand_computed():
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 6.0])
    assert methods.linear([a, b], [1.0, 0.0], normalize=True).tolist() == [1.0, 2.0]
    assert methods.linear([a, b], [1.0, 3.0], normalize=True).tolist() == [2.5, 5.0]
    assert methods.linear([a, b], [1.0, 3.0], normalize=False).tolist() == [10.0, 20.0]


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


def test_breadcrumbs_drops_the_outliers_and_the_smallest_hand_computed():
    tensor = torch.tensor([0.1, -5.0, 2.0, 0.5, -1.0, 3.0])
    kept = methods.outlier_mask(tensor.abs(), density=0.5, gamma=1 / 6)
    assert kept.tolist() == [False, False, True, False, True, True]


def test_the_k_largest_are_selected_exactly_even_among_equal_values():
    values = torch.tensor([3.0, 1.0, 2.0, 2.0, 2.0, 0.5])
    assert methods.largest(values, 3).tolist() == [True, False, True, True, False, False]
    assert int(methods.largest(torch.randn(10_001), 5_000).sum()) == 5_000


@pytest.mark.parametrize("k", [1, 700_000, 1_500_000, 2**21 - 1])
def test_the_bracketed_selection_of_a_large_tensor_is_exact(k):
    # Few distinct values, so that many equal the threshold: the bracket must still be exact.
    values = torch.randint(0, 1000, (2**21,), generator=torch.Generator().manual_seed(k)).float()
    expected = torch.zeros(values.numel(), dtype=torch.bool)
    expected[torch.sort(values, descending=True, stable=True).indices[:k]] = True
    assert methods.kth_largest(values, k) == torch.sort(values, descending=True).values[k - 1]
    assert torch.equal(methods.largest(values, k), expected)


def test_dare_keeps_its_density_in_share_and_the_task_vector_in_expectation():
    base, model = torch.zeros(200_000), torch.randn(200_000)
    kept = methods.random_mask(model.numel(), 0.3, torch.Generator().manual_seed(1))
    assert abs(kept.float().mean().item() - 0.3) < 0.005
    rescaled = model * kept * methods.l1_factor(model.abs(), kept)
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


def save_llama(folder: Path, state: dict[str, torch.Tensor] | None = None, **overrides) -> dict:
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = {"vocab_size": 64, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 3}
    shape |= {"num_attention_heads": 2, "num_key_value_heads": 2, "tie_word_embeddings": False}
    config = LlamaConfig(**(shape | overrides))
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    if state is not None:
        model.load_state_dict(state)
    model.save_pretrained(folder)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="session")
def llamas(tmp_path_factory) -> Path:
    """A base and three models fine-tuned from it (the base plus seeded noise), as a study's
    models folder: models/base, models/sft/{a,b,c}/seed-0."""
    root = tmp_path_factory.mktemp("llamas")
    base = save_llama(at(root, "base"))
    for seed, name in enumerate("abc", start=1):
        noise = torch.Generator().manual_seed(seed)
        tuned = {k: v + 0.05 * torch.randn(v.shape, generator=noise) for k, v in base.items()}
        save_llama(at(root, f"sft/{name}"), tuned)
    return root


RUNS = ("a", "b", "c", "odd", "mistral", "nope")


def at(root: Path, ref: str) -> Path:
    """A model's folder as the study keeps it (the base's, or a run's replicate of seed 0)."""
    return models.folder(ref, 0, root)


def params_with(merges: dict, seeds: tuple[int, ...] = (0,)):
    """Params declaring the models these tests merge (as SFT runs) and `merges`."""
    world = {"kind": "builtin", "eval": {"general": 1}, "train": {"general": 4}}
    phase = {"learning_rate": 1.0e-3}
    raw = {
        "languages": ["en"],
        "seeds": list(seeds),
        "data": {"sources": {"w": world}},
        "mixtures": {"m": {"safety": 0.0, "size_per_language": 4}},
        "base": {"source": "hf", "path": "models/base"},
        "train": {"sft": phase, "dpo": phase},
        "sft": {run: {"mixture": "m", "init": "base"} for run in RUNS},
        "merges": merges,
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

    config = yaml.safe_load((at(root, f"merge/{name}") / "mergekit.yaml").read_text())

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
}


@pytest.mark.parametrize("method", list(AGREEING))
def test_agrees_with_mergekit_within_a_millionth(llamas, tmp_path, method):
    ours = run_ours(llamas, method, AGREEING[method])
    theirs = run_mergekit(llamas, method, tmp_path / "mergekit")
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.allclose(ours[name], theirs[name], atol=1e-6, rtol=0), name


def test_dare_agrees_with_mergekit_in_kept_share_and_in_expectation(llamas, tmp_path):
    spec = {
        "method": "dare_linear",
        "stage": "sft",
        "base": "base",
        "models": [{"model": "sft/a"}],
        "parameters": {"density": 0.4},
    }
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

    mistral = MistralForCausalLM(
        MistralConfig(
            vocab_size=64,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=3,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    )
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
    at(root, "base").symlink_to(at(llamas, "base"))
    base = load_merged(at(root, "base"))
    for name, offset in (("a", 0.1), ("b", -0.1)):
        for seed in (0, 1):
            shifted = {k: v + offset * (seed + 1) for k, v in base.items()}
            save_llama(models.folder(f"sft/{name}", seed, root), shifted)
    linear = {
        "method": "linear",
        "stage": "sft",
        "models": [{"model": "sft/a"}, {"model": "sft/b", "weight": 3.0}],
    }  # noqa: E501
    with inside(root):
        summary = merge_stage.run(params_with({"lin": linear}, seeds=(0, 1)), "lin")
    assert set(summary["seeds"]) == {"seed-0", "seed-1"}
    for seed in (0, 1):
        merged = load_merged(models.folder("merge/lin", seed, root))
        a, b = (load_merged(models.folder(f"sft/{n}", seed, root)) for n in "ab")
        for name in base:
            assert torch.allclose(merged[name], (a[name] + 3 * b[name]) / 4, atol=1e-6)
    same = {
        "method": "dare_linear",
        "stage": "sft",
        "base": "base",
        "models": [{"model": "sft/a"}],
        "parameters": {"density": 0.5},
    }  # noqa: E501
    for seed in (0, 1):
        save_llama(models.folder("sft/a", seed, root), {k: v + 0.5 for k, v in base.items()})
    with inside(root):
        merge_stage.run(params_with({"dare": same}, seeds=(0, 1)), "dare")
    drops = [load_merged(models.folder("merge/dare", s, root)) for s in (0, 1)]
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
    from stages.core.config import BuiltinArchitecture
    from stages.training.model import build_cohere
    from stages.training.tokenizer import train_tokenizer

    tokenizer = train_tokenizer(["a small corpus", "of a few words"] * 20, vocab_size=300)
    shape = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2}
    shape |= {"num_key_value_heads": 2, "intermediate_size": 32}
    model = build_cohere(BuiltinArchitecture(**shape), tokenizer, seed=0)
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
