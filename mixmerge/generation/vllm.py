"""Generation with vLLM (Kwon et al., 2023, arXiv 2309.06180), on GPUs: `pip install
'mixmerge[vllm]'`. Imported only when `evaluation.generation.backend` is `vllm`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mixmerge.config.evaluation import GenerationConfig
from mixmerge.core.errors import StageError


def generate(
    model_dir: Path,
    prompts: Sequence[str],
    settings: GenerationConfig,
    trust_remote_code: bool = False,
) -> list[str]:
    """Responses to single-turn `prompts`, in order; vLLM schedules its own batches, of at
    most `batch_size` sequences."""
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        raise StageError(
            "the vllm backend needs vLLM: pip install 'mixmerge[vllm]' (on a machine with a GPU)"
        ) from None
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    if tokenizer.chat_template is None:
        raise StageError(f"{model_dir} has no chat template: cannot pose prompts to it as a chat")
    llm = LLM(
        model=str(model_dir),
        seed=settings.seed,
        max_num_seqs=settings.batch_size,
        trust_remote_code=trust_remote_code,
    )
    sampling = SamplingParams(
        max_tokens=settings.max_new_tokens,
        temperature=settings.temperature if settings.do_sample else 0.0,
        top_p=settings.top_p if settings.do_sample else 1.0,
        seed=settings.seed,
    )
    outputs = llm.chat([[{"role": "user", "content": p}] for p in prompts], sampling)
    return [output.outputs[0].text.strip() for output in outputs]
