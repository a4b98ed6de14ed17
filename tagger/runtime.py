"""ONNX Runtime sessions on the requested device, saying which provider really runs."""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from functools import cache
from pathlib import Path
from typing import Any

import onnxruntime as ort

from tagger.errors import ArtifactError, TaggerError

DEVICES = ("auto", "cpu", "cuda")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

# onnxruntime-gpu lists CUDA even on machines without a GPU and logs errors while falling
# back; we check which provider actually runs instead, so those lines are noise.
ort.set_default_logger_severity(4)


@cache
def has_cuda_driver() -> bool:
    """Whether the NVIDIA driver library loads: without it no GPU can run, so skip trying CUDA."""
    name = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def create_session(path: str | Path, device: str = "auto", threads: int | None = None) -> ort.InferenceSession:
    """An inference session on `device` ('auto': CUDA if it really runs, else CPU), with `threads`
    intra-op threads (None: ONNX Runtime's default, one per core; a Ray worker must set it).

    Raises:
        TaggerError: `device='cuda'` and no CUDA GPU is usable.
        ArtifactError: the file is not a loadable ONNX model.
    """
    if device not in DEVICES:
        raise TaggerError(f"unknown device {device!r}; choose one of: {', '.join(DEVICES)}")
    has_provider = CUDA in ort.get_available_providers()
    if device == "cuda" and not has_provider:
        raise TaggerError(
            "--device cuda: this ONNX Runtime has no CUDA provider"
            f" (installed: {ort.get_device()} build); install onnxruntime-gpu or use --device cpu"
        )
    if device == "cuda" and not has_cuda_driver():
        raise TaggerError("--device cuda: no NVIDIA driver found (libcuda); use --device cpu or --device auto")
    wants_cuda = device != "cpu" and has_provider and has_cuda_driver()
    providers = [CUDA, CPU] if wants_cuda else [CPU]
    options = ort.SessionOptions()
    options.log_severity_level = 4
    if not wants_cuda:
        # The shipped BERT graphs are fused at export: on the CPU, ONNX Runtime's extended and layout
        # passes bought no speed and took 0.12 s of a 0.45 s uk_bert session start (AVX2 EPYC). uk
        # files give byte-identical output at either level; en_bert the same entities, scores within
        # 1e-4 (docs/performance.md, "Cold start"). Basic passes (constant folding) stay: they fold
        # the INT8 weights to float32 once, not on every call.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    if threads is not None:
        if threads < 1:
            raise TaggerError(f"threads {threads}: give a positive number of threads")
        options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as err:  # noqa: BLE001 - ORT raises several untyped errors for bad files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ArtifactError(
            f"{path}: not a loadable ONNX model ({first[:200]}); re-export it with `tagger export`"
        ) from None
    if device == "cuda" and session.get_providers()[0] != CUDA:
        raise TaggerError(
            "--device cuda: no usable CUDA GPU (CUDA provider failed to start: driver, CUDA or"
            " cuDNN libraries missing); use --device cpu or --device auto"
        )
    return session


def cache_dir() -> Path:
    """Where tagger keeps things between runs (converted encoders, notices shown): $TAGGER_CACHE,
    else ~/.cache/tagger."""
    return Path(os.environ.get("TAGGER_CACHE") or Path.home() / ".cache" / "tagger")


def active_provider(session: ort.InferenceSession) -> str:
    """The provider that runs the session's nodes first: 'CUDA' or 'CPU'."""
    return session.get_providers()[0].removesuffix("ExecutionProvider")


# The CPU features that change which integer and float kernels ONNX Runtime picks, as lscpu names them.
KERNEL_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def machine() -> dict[str, Any]:
    """What a measured score or speed was measured on: CPU model, its kernel-relevant flags,
    the cores this process may use, and the ONNX Runtime version."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:  # not Linux: the model name from platform is what we have
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": model, "flags": [f for f in KERNEL_FLAGS if f in flags], "cores": cores,
            "onnxruntime": ort.__version__}
