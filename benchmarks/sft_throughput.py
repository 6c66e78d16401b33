"""SFT throughput with padding against packing, on the default study's base model and mixture.

Padding pads every batch to its longest example; packing (TRL's best-fit decreasing, with
per-sequence positions so that examples do not attend to each other) fills rows of `max_length`
tokens. Packing's batch holds as many rows as make the same number of real tokens per step as a
padded batch, so that both take about as many optimizer steps over the same examples and
epochs; both trained models are then scored on the same examples, one at a time. The
throughputs compare fairly when those losses agree.

    python benchmarks/sft_throughput.py [--params params.yaml] [--mixture mix15] [--epochs 2]

Run after `dvc repro base mix@<mixture>`; prints a table and writes
reports/benchmarks/sft_throughput.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mixmerge.core.io import read_jsonl, write_json
from mixmerge.core.offline import go_offline
from mixmerge.validation import load_params


def train_once(model_dir: Path, rows: list[dict], params, packing: bool, epochs: float) -> dict:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from mixmerge.training.common import load, training_arguments
    from mixmerge.training.sft import prompt_completion

    runtime, phase = params.train.runtime, params.train.sft
    model, tokenizer = load(model_dir, runtime)
    if packing:
        lengths = [
            len(tokenizer.apply_chat_template(r["messages"], tokenize=True)["input_ids"])
            for r in rows
        ]
        rows_per_step = phase.batch_size * sum(lengths) / len(lengths) / phase.max_length
        phase = phase.model_copy(update={"batch_size": max(1, round(rows_per_step))})
    with tempfile.TemporaryDirectory() as scratch:
        args = training_arguments(
            SFTConfig,
            phase.model_copy(update={"epochs": epochs}),
            runtime,
            Path(scratch),
            completion_only_loss=True,
            packing=packing,
            eval_packing=False,
            save_strategy="no",
            disable_tqdm=True,
        )
        dataset = Dataset.from_list([prompt_completion(r["messages"]) for r in rows])
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            eval_dataset=dataset,
            processing_class=tokenizer,
        )
        started = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - started
        scored = trainer.evaluate()
    # TRL counts the real (not padding) tokens it trained on.
    tokens = max(entry.get("num_tokens", 0) for entry in trainer.state.log_history)
    return {
        "mode": "packing" if packing else "padding",
        "seconds": round(seconds, 2),
        "steps": trainer.state.global_step,
        "batch_size": phase.batch_size,
        "tokens": int(tokens),
        "tokens_per_second": round(tokens / seconds, 1),
        "train_loss": round(result.training_loss, 4),
        "loss_after": round(scored["eval_loss"], 4),
    }


def main() -> None:
    go_offline()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--mixture", default="mix15")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--out", default="reports/benchmarks/sft_throughput.json")
    options = parser.parse_args()

    params = load_params(options.params)
    rows = [
        {"messages": row["messages"]}
        for row in read_jsonl(Path("data/mixtures") / options.mixture / "sft.jsonl")
    ]
    results = [
        train_once(Path("models/base/seed-0"), rows, params, packing, options.epochs)
        for packing in (False, True)
    ]
    print(f"{'mode':8} {'seconds':>8} {'steps':>6} {'tokens/s':>9} {'loss after':>10}")
    for r in results:
        print(
            f"{r['mode']:8} {r['seconds']:8.1f} {r['steps']:6d} "
            f"{r['tokens_per_second']:9.0f} {r['loss_after']:10.4f}"
        )
    write_json(Path(options.out), {"mixture": options.mixture, "results": results})


if __name__ == "__main__":
    main()
