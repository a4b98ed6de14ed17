"""One uk encoder, two heads: ner-uk's 4 types and ner-uk 2.0's 13, trained together (measured, not shipped).

    python scripts/multitask.py --seed 3 --epochs 3 --out runs/mt_s3
    tagger export runs/mt_s3/best_bert.pth -o runs/mt_s3/uk4.onnx
    tagger export runs/mt_s3/uk13_bert.pth -o runs/mt_s3/uk13.onnx
    tagger evaluate --split validation --data ../shared/data/ner-uk --model runs/mt_s3/uk4.onnx \\
        --model runs/mt_s3/uk13.onnx --weights 0.5,0.5 [--by-document]

The best uk choice on every split is `bert+uk13`, the 4-type BERT averaged with the 13-type one read in
four types, but it runs two encoders. Here one encoder learns both annotations (the 4-type recipe's data:
ner-uk's train split and ner-uk 2.0's ng documents in 4 types; and ner-uk 2.0's train split in 13 types),
each with its own classifier and CRF; batches of the two tasks alternate at random. Neither task reads a
document of ner-uk's validation or test split (`../shared/data/ner-uk-2.0-4types/README.md`: those are
all the repository's TEST documents; ner-uk 2.0's train split is DEV documents), so the two heads can be
averaged and scored there. No epoch is chosen: the last one is kept, and both heads are written as
ordinary checkpoints (sharing the encoder's weights) that `tagger export` turns into two files.
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import time
from pathlib import Path

import torch
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tagger.conll import Sentence  # noqa: E402
from tagger.header import joined_licenses  # noqa: E402
from tagger.subwords import join_runs, window_sizes  # noqa: E402
from tagger.train.bert import BertTagger  # noqa: E402
from tagger.train.checkpoint import save_checkpoint  # noqa: E402
from tagger.train.config import TrainConfig  # noqa: E402
from tagger.train.data import load_corpus  # noqa: E402
from tagger.train.distributed import joined  # noqa: E402
from tagger.train.loop import build, cpu_state, evaluate_model, load, parity_examples, prepare_output  # noqa: E402
from tagger.train.recipes import CRF_LR_SCALE, bert_optimizer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-sentences", type=int, default=0,
                        help="each task's first N training sentences (smoke runs)")
    args = parser.parse_args()
    config = TrainConfig(arch="bert", lang="uk", data=str(args.data / "ner-uk"),
                         extra_train=[str(args.data / "ner-uk-2.0-4types")], extra_documents="ng/",
                         epochs=args.epochs, crf=True, document_context=True, batch_size=4, seed=args.seed,
                         out=str(args.out), max_train_sentences=args.max_sentences)
    prepare_output(args.out)
    corpus13 = load_corpus("uk", args.data / "ner-uk-2.0", ("train", "validation"))
    labels13 = corpus13.labels
    with joined(config.device) as ranks:
        console = Console(stderr=True)
        run = build(config, load(config), ranks, console)
        four = run.recipe
        # The 13-type task: the same encoder and vocabulary, its own classifier and CRF.
        train13 = corpus13.splits["train"][: args.max_sentences or None]
        words, tags = join_runs([s.words for s in train13])[0], join_runs([s.tags for s in train13])[0]
        thirteen = copy.copy(four)
        thirteen.model = BertTagger(four.model.encoder, len(labels13), config.dropout, crf=True).to(four.device)
        thirteen.forward = None
        thirteen.labels, thirteen.label_index = labels13, {t: i for i, t in enumerate(labels13)}
        thirteen.train_set = [Sentence(w, t) for w, t in zip(words, tags)]
        thirteen.windows, thirteen.pieces = four.subwords.windows([s.words for s in thirteen.train_set])
        thirteen.sizes = window_sizes(thirteen.windows, thirteen.pieces)
        # One optimiser and schedule over both tasks' steps: the 4-type one's, rebuilt for the total.
        optimizer, scheduler = bert_optimizer(four.model, config, len(four.windows) + len(thirteen.windows))
        # The 13-type head's classifier and CRF at the rates of the 4-type one's, on the same schedule
        # (LambdaLR keeps a peak rate and a factor function per group: extend both).
        for part, peak in ((thirteen.model.scores, config.lr), (thirteen.model.crf, config.lr * CRF_LR_SCALE)):
            optimizer.add_param_group({"params": list(part.parameters()), "lr": 0.0, "initial_lr": peak,
                                       "weight_decay": 0.0})
            scheduler.base_lrs.append(peak)
            scheduler.lr_lambdas.append(scheduler.lr_lambdas[0])
        console.print(f"multitask: {len(four.windows)} 4-type windows, {len(thirteen.windows)} 13-type windows"
                      f" ({len(train13)} ner-uk 2.0 train sentences)")
        rng = random.Random(config.seed)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        for epoch in range(1, config.epochs + 1):
            started = time.monotonic()
            steps = [(four, b) for b in four.plan(rng)] + [(thirteen, b) for b in thirteen.plan(rng)]
            rng.shuffle(steps)
            four.model.train()
            thirteen.model.train()
            totals = {id(four): 0.0, id(thirteen): 0.0}  # sums of batch losses
            counts = {id(four): 0, id(thirteen): 0}
            for k, (task, batch) in enumerate(steps, start=1):
                loss = task.loss(batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, config.clip)
                optimizer.step()
                scheduler.step()
                totals[id(task)] += loss.item()
                counts[id(task)] += 1
                if k % 500 == 0:
                    console.print(f"  step {k}/{len(steps)} {time.monotonic() - started:.0f}s")
            report = evaluate_model(four, run.splits.validation)
            console.print(f"epoch {epoch}: mean batch loss 4-type {totals[id(four)] / max(1, counts[id(four)]):.4f}"
                          f" 13-type {totals[id(thirteen)] / max(1, counts[id(thirteen)]):.4f};"
                          f" 4-type head alone, ner-uk validation F1 {report.micro.f1:.4f};"
                          f" {time.monotonic() - started:.0f}s")
        # Both heads' records name all three training sets: the shared encoder learned from each.
        corpora = [*run.base["data"]["training_corpora"], {**corpus13.record(), "sentences": len(train13)}]
        licenses = joined_licenses([run.base["data"]["license"], corpus13.corpus.license])
        data4 = {**run.base["data"], "training_corpora": corpora, "license": licenses}
        metrics = {"epoch": config.epochs, "validation": report.to_json()}
        save_checkpoint(run.path, {**run.base, "data": data4, "state_dict": cpu_state(four.model), "metrics": metrics})
        validation13 = corpus13.splits["validation"]
        data13 = {**data4, "corpus": corpus13.record()["corpus"], "source": corpus13.source,
                  "sentences": {"train": len(train13), "validation": len(validation13), "test": 0}}
        save_checkpoint(args.out / "uk13_bert.pth", {**run.base, "labels": labels13, "data": data13,
                                                     "examples": parity_examples(validation13),
                                                     "state_dict": cpu_state(thirteen.model), "metrics": {}})
        console.print(f"wrote {run.path} and {args.out / 'uk13_bert.pth'}")


if __name__ == "__main__":
    main()
