"""Whether a merge's models can be merged at all: the loss of held-out answers along the
straight path between them, the barrier on that path, and how far each moved from its base.

Two models are linearly mode-connected when the loss along θ(α) = θ_A + α(θ_B − θ_A) stays
at or below the straight line between its ends; the **barrier** is the path's largest excess
over that line (Frankle et al., 2020, "Linear mode connectivity and the lottery ticket
hypothesis", arXiv 1912.05671). Fine-tunes of one pretrained model that stay in its basin are
connected, and averaging them keeps what each learnt; those that leave it are not (Qin et al.,
2022, "Exploring mode connectivity for pre-trained language models", arXiv 2210.14102). Merges
at scale keep both parents' skills from strong bases with small fine-tunes (Yadav et al., 2024,
"What matters for model merging at scale?", arXiv 2410.03617), so the study reports, beside
each barrier, each task vector's size against its base, ‖τᵢ‖ / ‖θ_base‖, and the cosines
between the task vectors.

For more than two models the paths run from their average (α = 0) to each of them (α = 1).
The loss is the mean negative log-likelihood, in nats per token, of the answers (an SFT
response, or the chosen answer of a preference pair) to the held-out prompts, per group: an
objective in a language (`general/hi`), since a merge of a general and a safety model is
connected or not on each skill apart (pooled, the answers of one skill that each end gets wrong
make any middle look better than both ends). Forward passes only, no generation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path

from mixmerge.config import StudyConfig
from mixmerge.config.merges import MergeabilityConfig
from mixmerge.core.errors import StageError
from mixmerge.core.records import Record

AVERAGE = "average"  # the start of every path when more than two models are merged


@dataclass(frozen=True)
class PathLosses:
    """The held-out loss per group (`general/hi`) at each α of the path from `start` to `end`."""

    start: str
    end: str
    alphas: tuple[float, ...]
    losses: dict[str, tuple[float, ...]]

    def barrier(self) -> dict[str, float]:
        """Per group, the largest excess of the path's loss over the line between its ends
        (0 where the path never rises above it)."""
        found = {}
        for group, losses in self.losses.items():
            first, last = losses[0], losses[-1]
            found[group] = max(
                loss - ((1 - alpha) * first + alpha * last)
                for alpha, loss in zip(self.alphas, losses, strict=True)
            )
        return found

    def ends(self) -> dict[str, float]:
        """Per group, the mean of the ends' losses: what a barrier is measured against."""
        return {code: (path[0] + path[-1]) / 2 for code, path in self.losses.items()}


@dataclass(frozen=True)
class Mergeability:
    """What `measure` finds for one replicate of a merge."""

    split: str
    tolerance: float
    paths: tuple[PathLosses, ...]
    reference: str | None  # the base the task vectors are measured from
    relative_norms: dict[str, float | None]  # ‖τᵢ‖ / ‖θ_reference‖ per model
    # between task vectors, per pair ("a | b"); None where one of them is 0
    cosines: dict[str, float | None]
    merged: dict[str, float] | None = None  # the merged model's own loss per group

    @property
    def barrier(self) -> dict[str, float]:
        """Per group, the highest barrier of any path."""
        barriers = [path.barrier() for path in self.paths]
        return {group: max(b[group] for b in barriers) for group in barriers[0]}

    def by_language(self) -> dict[str, float]:
        """Per language, the highest barrier of any objective."""
        return _highest(self.barrier, lambda group: group.rpartition("/")[2])

    def by_objective(self) -> dict[str, float]:
        """Per objective, the highest barrier of any language."""
        return _highest(self.barrier, lambda group: group.partition("/")[0])

    def middle(self) -> dict[str, float]:
        """Per group, the loss of the models' middle: the average of more than two (every
        path's start), or the midpoint of the path between two (its α nearest 0.5)."""
        if len(self.paths) > 1:
            return {group: losses[0] for group, losses in self.paths[0].losses.items()}
        path = self.paths[0]
        nearest = min(range(len(path.alphas)), key=lambda k: abs(path.alphas[k] - 0.5))
        return {group: losses[nearest] for group, losses in path.losses.items()}

    def edge_kept(self) -> dict[str, float | None]:
        """Per group, the share of the best model's edge over the worst that the middle keeps:
        1 where the middle does as well as the best model, 0 where as badly as the worst (None
        where the models do equally well: their losses within `tolerance` of each other).
        Two fine-tunes for different skills may be connected, no barrier between them, and
        still each lose much of its edge at the middle: each skill's loss rises or falls
        steadily along the path."""
        own = [path.losses for path in self.paths]
        ends = [{g: at[-1] for g, at in e.items()} for e in own]
        if len(self.paths) == 1:
            ends.append({g: at[0] for g, at in own[0].items()})
        kept = {}
        for group, middle in self.middle().items():
            best, worst = min(e[group] for e in ends), max(e[group] for e in ends)
            edge = worst - best > self.tolerance * (worst + best) / 2
            kept[group] = (worst - middle) / (worst - best) if edge else None
        return kept

    def edge_by_objective(self) -> dict[str, float | None]:
        """Per objective, the share of the edge its worst language keeps at the middle."""
        found: dict[str, float | None] = {}
        for group, kept in self.edge_kept().items():
            objective = group.partition("/")[0]
            if kept is not None:
                known = found.get(objective)
                found[objective] = kept if known is None else min(known, kept)
            else:
                found.setdefault(objective, None)
        return found

    def connected(self) -> dict[str, bool]:
        """Per group, whether every path's barrier is within `tolerance` of its ends' mean
        loss."""
        return {
            group: all(
                path.barrier()[group] <= self.tolerance * path.ends()[group] for path in self.paths
            )
            for group in self.barrier
        }

    def reading(self) -> str:
        """The plain reading of it, for the report: whether the models are connected, how
        much of each objective's edge their middle keeps, and what averaging is expected to
        do (keep most of a skill: 90 % of its edge or more; lose most: under half)."""
        broken: dict[str, list[str]] = {}  # objective: its languages whose path rises
        for group, ok in self.connected().items():
            if not ok:
                objective, _, language = group.partition("/")
                broken.setdefault(objective, []).append(language)
        sizes = ", ".join(f"{v:.3f}" for v in self.relative_norms.values() if v is not None)
        moved = f"‖τ‖/‖θ‖ {sizes}" if sizes else "no base to measure task vectors from"
        if broken:
            worst = max((g for g, ok in self.connected().items() if not ok), key=self.barrier.get)
            where = "; ".join(f"{o} answers in {', '.join(c)}" for o, c in broken.items())
            said = (
                f"not linearly connected on {where} (barrier up to "
                f"{self.barrier[worst]:.3f} nats, {worst}; {moved})"
            )
        else:
            said = (
                f"linearly connected (no barrier beyond {self.tolerance:.0%} of the ends' loss; "
                f"{moved})"
            )
        edges = {o: k for o, k in self.edge_by_objective().items() if k is not None}
        if not edges:
            return f"{said}; the models do equally well on every objective"
        said += "; their middle keeps " + ", ".join(
            f"{k:.0%} of the {o} edge" for o, k in edges.items()
        )
        low = min(edges.values())
        if broken or low < 0.5:
            return said + ": averaging is expected to lose much of what the models learnt"
        if low < 0.9:
            return said + ": averaging is expected to keep part of what the models learnt"
        return said + ": averaging is expected to keep what each model learnt"

    @classmethod
    def from_json(cls, data: dict) -> Mergeability:
        paths = tuple(
            PathLosses(
                p["start"],
                p["end"],
                tuple(p["alphas"]),
                {code: tuple(at) for code, at in p["losses"].items()},
            )  # fmt: skip
            for p in data["paths"]
        )
        return cls(
            data["split"], data["tolerance"], paths, data["reference"],
            data["relative_norms"], data["cosines"], data["merged"],
        )  # fmt: skip

    @classmethod
    def average(cls, replicates: Sequence[Mergeability]) -> Mergeability:
        """The replicates' mean (one per training seed): each path's loss at each α, the
        sizes, the cosines and the merged model's loss, averaged."""
        first = replicates[0]
        paths = tuple(
            PathLosses(
                path.start,
                path.end,
                path.alphas,
                {
                    code: tuple(
                        _average([r.paths[i].losses[code][k] for r in replicates])
                        for k in range(len(path.alphas))
                    )
                    for code in path.losses
                },
            )  # fmt: skip
            for i, path in enumerate(first.paths)
        )

        def mean_of(field: str) -> dict[str, float] | None:
            if getattr(first, field) is None:
                return None
            return {
                k: _average([getattr(r, field)[k] for r in replicates])
                for k in getattr(first, field)
            }

        return cls(
            first.split, first.tolerance, paths, first.reference, mean_of("relative_norms"),
            mean_of("cosines"), mean_of("merged"),
        )  # fmt: skip

    def to_json(self) -> dict:
        return {
            "split": self.split,
            "tolerance": self.tolerance,
            "barrier": _rounded(self.barrier),
            "barrier_by_language": _rounded(self.by_language()),
            "barrier_by_objective": _rounded(self.by_objective()),
            "connected": self.connected(),
            "edge_kept": _rounded(self.edge_kept()),
            "edge_kept_by_objective": _rounded(self.edge_by_objective()),
            "reading": self.reading(),
            "reference": self.reference,
            "relative_norms": _rounded(self.relative_norms),
            "cosines": _rounded(self.cosines),
            "merged": _rounded(self.merged) if self.merged is not None else None,
            "paths": [
                asdict(path) | {"alphas": list(path.alphas), "barrier": _rounded(path.barrier())}
                | {"losses": {k: [round(v, 6) for v in at] for k, at in path.losses.items()}}
                for path in self.paths
            ],
        }  # fmt: skip


def held_out(dev: Sequence[Record], eval_: Sequence[Record]) -> tuple[str, list[Record]]:
    """The records whose answers the paths are scored on, and their split: dev, or eval where
    dev holds no answer."""
    for split, records in (("dev", dev), ("eval", eval_)):
        answered = [r for r in records if _answer(r) is not None]
        if answered:
            return split, answered
    raise StageError(
        "mergeability: neither dev nor eval holds an answer to score (a response or a chosen "
        "answer); set `mergeability.enabled: false` or give the sources answers"
    )


def measure(
    models: Sequence[tuple[str, Path]],
    reference: tuple[str, Path] | None,
    records: Sequence[Record],
    split: str,
    settings: MergeabilityConfig,
    merged: Path | None = None,
    trust_remote_code: bool = False,
) -> Mergeability:
    """The paths between `models` (name, folder; two or more), their task vectors from
    `reference` (when given) and the `merged` model's own loss, on `records`' answers."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if len(models) < 2:
        raise ValueError("a path needs two models or more")
    device = settings.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(models[0][1], trust_remote_code=trust_remote_code)
    examples = _examples(tokenizer, records, settings.max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def load(folder: Path):
        return AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=trust_remote_code)

    network = load(models[0][1])
    names = [name for name, _ in network.named_parameters()]  # tied tensors once
    states = [_state(network)] + [_state(load(folder)) for _, folder in models[1:]]  # on the CPU
    network = network.to(device).eval()

    def losses_at(state: dict) -> dict[str, float]:
        network.load_state_dict(state, strict=True)
        return _losses(network, examples, settings.batch_size, device, pad)

    if len(models) == 2:
        ends = [(models[0][0], states[0], models[1][0], states[1])]
    else:
        average = {key: _mean([s[key] for s in states]) for key in states[0]}
        ends = [(AVERAGE, average, name, s) for (name, _), s in zip(models, states, strict=True)]
    paths = []
    ends_seen: dict[str, dict] = {}  # a model's losses, once: the average starts every path
    for start, first, end, last in ends:
        at = []
        for alpha in settings.alphas:
            name = start if alpha == 0 else end if alpha == 1 else None
            if name not in ends_seen:
                losses = losses_at(_lerp(first, last, alpha))
                if name is None:
                    at.append(losses)
                    continue
                ends_seen[name] = losses
            at.append(ends_seen[name])
        paths.append(
            PathLosses(
                start,
                end,
                tuple(settings.alphas),
                {code: tuple(point[code] for point in at) for code in at[0]},
            )  # fmt: skip
        )
    norms, cosines = {}, {}
    if reference is not None:
        base = _state(load(reference[1]))
        vectors = [{k: s[k].float() - base[k].float() for k in names} for s in states]
        size = _dot(base, base, names) ** 0.5
        lengths = [_dot(vector, vector, names) ** 0.5 for vector in vectors]
        for (name, _), length in zip(models, lengths, strict=True):
            norms[name] = length / size if size else None
        for (i, (a, _)), (j, (b, _)) in combinations(enumerate(models), 2):
            across = lengths[i] * lengths[j]
            cosines[f"{a} | {b}"] = _dot(vectors[i], vectors[j], names) / across if across else None
    own = losses_at(_state(load(merged))) if merged is not None else None
    return Mergeability(
        split, settings.tolerance, tuple(paths), reference[0] if reference else None,
        norms, cosines, own,
    )  # fmt: skip


def loss_of(
    folder: Path,
    records: Sequence[Record],
    settings: MergeabilityConfig,
    trust_remote_code: bool = False,
) -> dict[str, float]:
    """One model's held-out loss per group (a search point's place against its path)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = settings.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    network = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=trust_remote_code)
    examples = _examples(tokenizer, records, settings.max_length)
    return _losses(network.to(device).eval(), examples, settings.batch_size, device, pad)


@dataclass(frozen=True)
class _Example:
    group: str  # objective/language
    ids: tuple[int, ...]
    answer_from: int  # the first token of the answer


def _answer(record: Record) -> str | None:
    return record.response if record.response is not None else record.chosen


def _examples(tokenizer, records: Sequence[Record], max_length: int) -> list[_Example]:
    """Each answered record as chat tokens, the answer's place marked; an answer that starts
    beyond `max_length` is left out."""
    found = []
    for record in records:
        answer = _answer(record)
        if answer is None:
            continue
        prompt = [{"role": "user", "content": record.prompt}]
        head = tokenizer.apply_chat_template(
            prompt, add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"]
        whole = tokenizer.apply_chat_template(
            [*prompt, {"role": "assistant", "content": answer}], tokenize=True, return_dict=True
        )["input_ids"]
        # Where a template renders the prompt otherwise once answered, the answer starts
        # where the two first differ.
        start = next(
            (i for i, (a, b) in enumerate(zip(head, whole, strict=False)) if a != b), len(head)
        )
        ids = tuple(whole[:max_length])
        if start < len(ids):
            found.append(_Example(f"{record.objective}/{record.language}", ids, start))
    if not found:
        raise StageError("mergeability: no held-out answer fits `mergeability.max_length`")
    return found


def _losses(network, examples: Sequence[_Example], batch_size: int, device, pad: int) -> dict:
    """Per group, the mean loss per answer token (the tokens weigh the same)."""
    import torch
    from torch.nn.functional import cross_entropy

    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].ids))
    for begin in range(0, len(order), batch_size):
        batch = [examples[i] for i in order[begin : begin + batch_size]]
        width = max(len(e.ids) for e in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for row, example in enumerate(batch):
            ids[row, : len(example.ids)] = torch.tensor(example.ids)
            mask[row, : len(example.ids)] = 1
            labels[row, example.answer_from : len(example.ids)] = ids[
                row, example.answer_from : len(example.ids)
            ]
        # Token t is predicted at position t − 1: logits only from the one before the batch's
        # first answer token on (the vocabulary's projection costs most of a small model's pass).
        first = min(example.answer_from for example in batch) - 1
        keep = torch.arange(first, width - 1, device=device)
        with torch.no_grad():
            logits = network(
                input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=keep
            ).logits
        targets = labels[:, first + 1 :]
        nll = cross_entropy(logits.float().transpose(1, 2), targets.to(device), reduction="none")
        answered = targets != -100
        for row, example in enumerate(batch):
            totals[example.group] += float(nll[row].sum())
            counts[example.group] += int(answered[row].sum())
    return {code: totals[code] / counts[code] for code in sorted(totals)}


def _state(network) -> dict:
    return {key: value.detach().clone() for key, value in network.state_dict().items()}


def _lerp(first: dict, last: dict, alpha: float) -> dict:
    """θ_first + α (θ_last − θ_first), computed in float32 and kept in each tensor's dtype: a
    path between two equal models is that model at every α, exactly."""
    import torch

    return {
        key: (
            torch.lerp(value.float(), last[key].float(), alpha).to(value.dtype)
            if value.is_floating_point()
            else value
        )
        for key, value in first.items()
    }


def _mean(tensors: list) -> object:
    if not tensors[0].is_floating_point():
        return tensors[0]
    return (sum(t.float() for t in tensors) / len(tensors)).to(tensors[0].dtype)


def _dot(a: dict, b: dict, names: Sequence[str]) -> float:
    return float(sum((a[k].double() * b[k].double()).sum() for k in names))


def _highest(figures: dict[str, float], part: Callable[[str], str]) -> dict[str, float]:
    """The highest of the figures per `part` of their groups (an objective, a language)."""
    found: dict[str, float] = {}
    for group, value in figures.items():
        key = part(group)
        found[key] = max(found.get(key, value), value)
    return found


def _average(values: Sequence[float | None]) -> float | None:
    return None if None in values else sum(values) / len(values)


def _rounded(figures: dict[str, float | None]) -> dict[str, float | None]:
    return {key: None if value is None else round(value, 6) for key, value in figures.items()}


@dataclass(frozen=True)
class Probe:
    """What the paths are scored on (`held_out`'s split and records) and how."""

    split: str
    records: tuple[Record, ...]
    settings: MergeabilityConfig
    trust_remote_code: bool = False


def probe(params: StudyConfig, root: Path) -> Probe | None:
    """The study's probe in `root`, or None when its `mergeability` is off."""
    from mixmerge import paths
    from mixmerge.data.prepared import read_split

    if not params.mergeability.enabled:
        return None
    prepared = root / paths.PREPARED
    split, records = held_out(
        read_split(prepared, "dev", params.languages),
        read_split(prepared, "eval", params.languages),
    )
    return Probe(split, tuple(records), params.mergeability, params.trust_remote_code)
