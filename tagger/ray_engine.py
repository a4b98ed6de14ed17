"""`tagger tag INPUT... --output DIR --engine ray`: the same shards, tagged by a Ray Data actor pool.

Ray Data's batch-inference pattern: each input's documents become a dataset, `map_batches` runs
them through `TagActor`s (each loads the model once, with an explicit ONNX Runtime thread count:
Ray limits threads inside workers), and the records come back in input order and are written
as the local engine writes them. The driver reads the inputs with the local engine's readers, so
a bad input fails with the same one-line error. `pip install 'tagger[ray]'` brings Ray.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tagger.errors import TaggerError
from tagger.sharded import Summary, output_folder, shard_exists, target_of, write_shard


@dataclass(frozen=True)
class RayOptions:
    """How the actor pool is laid out."""

    address: str | None = None  # a running cluster; None: RAY_ADDRESS, else a local one
    concurrency: int = 1  # actors
    num_cpus: float = 1.0  # CPUs reserved per actor
    num_gpus: float = 0.0  # GPUs per actor (CUDA inside it)
    threads: int = 1  # ONNX Runtime intra-op threads per model in an actor


@dataclass(frozen=True)
class ModelSpec:
    """What `tagger.load` gets in every actor (plain data: it travels to the workers)."""

    lang: str | None = None
    model: tuple[str, ...] = ()
    arch: str | None = None
    device: str = "auto"
    weights: tuple[float, ...] | None = None


class TagActor:
    """Loads the model once; turns batches of document rows into their JSONL records, row for row
    (a shard's end marker and an input's error row pass through untouched)."""

    def __init__(self, spec: dict[str, Any], threads: int, errors: str) -> None:
        import tagger

        self.errors = errors
        model = spec.pop("model") or None
        weights = spec.pop("weights")
        self.nlp = tagger.load(model=list(model) if model else None, weights=list(weights) if weights else None,
                               threads=threads, **spec)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Input files in, one row per document out, then a row marking the end of each file's shard
        (or a single row carrying the file's error, raised by the driver in the local engine's words)."""
        import numpy as np

        from tagger.annotate import annotate
        from tagger.sharded import file_documents

        rows: list[tuple[int, str, int, int, bool, str]] = []  # shard, record, words, entities, end, error
        for shard, path in zip(batch["shard"], batch["path"]):
            try:
                documents = annotate(file_documents(str(path), self.errors), self.nlp.model, self.nlp.lang)
                rows += [(int(shard), *document, False, "") for document in per_document(documents)]
                rows.append((int(shard), "", 0, 0, True, ""))
            except TaggerError as err:
                rows.append((int(shard), "", 0, 0, False, str(err) or type(err).__name__))
        columns = list(zip(*rows))
        return {"shard": np.array(columns[0]), "record": np.array(columns[1], dtype=object),
                "words": np.array(columns[2]), "entities": np.array(columns[3]), "end": np.array(columns[4]),
                "error": np.array(columns[5], dtype=object)}


def per_document(events: Any) -> Any:
    """(JSONL record, words, entities) of each document of an event stream, in order."""
    from tagger.output import jsonl_lines
    from tagger.sharded import Summary

    counts = Summary()
    record, words, entities = "", 0, 0
    for chunk in jsonl_lines(counts.counted(events)):
        record += chunk
        if chunk.endswith("\n"):
            yield record, counts.words - words, counts.entities - entities
            record, words, entities = "", counts.words, counts.entities


def start(address: str | None) -> Any:
    """ray, initialised: on `address`, else $RAY_ADDRESS, else a new local cluster."""
    try:
        import ray
    except ImportError:
        raise TaggerError("--engine ray needs Ray: pip install 'tagger[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # records in input order
    context.enable_progress_bars = False  # tagger prints its own summary
    logging.getLogger("ray").setLevel(logging.WARNING)
    return ray


def tag_with_ray(spec: ModelSpec, inputs: Sequence[str], out: str, options: RayOptions,
                 errors: str = "strict") -> Summary:
    """The Ray engine: the shards `tag_to_folder` writes, read and tagged by workers, written here."""
    ray = start(options.address)
    output_folder(out)
    summary = Summary()
    pending: list[str] = []
    for path in inputs:
        target = target_of(out, path)
        (summary.skipped if shard_exists(target) else pending).append(path)
    if not pending:
        return summary
    # One row per input file: each actor reads and tags whole files, so no other task competes for
    # the CPUs the actors hold (reading in separate tasks starved on a 2-CPU cluster).
    files = ray.data.from_items([{"shard": k, "path": p} for k, p in enumerate(pending)],
                                override_num_blocks=len(pending))  # a block per file: every actor gets work
    tagged = files.map_batches(
        TagActor, fn_constructor_kwargs={"spec": asdict(spec), "threads": options.threads, "errors": errors},
        compute=ray.data.ActorPoolStrategy(size=min(options.concurrency, len(pending))), num_cpus=options.num_cpus,
        num_gpus=options.num_gpus, batch_size=1, batch_format="numpy")
    records: list[str] = []
    for row in tagged.iter_rows():
        if row["error"]:
            raise TaggerError(str(row["error"]))
        if row["end"]:
            target = target_of(out, pending[int(row["shard"])])
            write_shard(target, records)
            summary.written.append(target)
            records = []
            continue
        records.append(str(row["record"]))
        summary.documents += 1
        summary.words += int(row["words"])
        summary.entities += int(row["entities"])
    return summary
