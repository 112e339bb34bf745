#!/usr/bin/env python3
"""Trains a domain pack's LoRA adapter for Folio's default small model
(SmolLM2-135M-Instruct) on the pack's extraction task (issue 7).

    python3 tools/train_pack_lora.py medical|finance [--out DIR] [--data DIR]
        [--epochs N] [--minutes M] [--rank R] [--lr LR] [--context N]
        [--json-budget 384] [--finance-train N] [--finance-eval N]

Writes the PEFT adapter (adapter_config.json, adapter_model.safetensors) to
--out (default /work/eval/lora/<pack>/peft), and to --data (default
/work/eval/lora/<pack>) the examples (train.jsonl, eval.jsonl: a header line,
then one {"id", "prompt", "completion", "record"} a line) and summary.json
(losses, times, settings). `folio convert hf OUT --base MODEL.gguf --out
adapter.gguf` turns the adapter into the GGUF the pack ships.

Prompts: what Folio's Extractor shows the model, mirrored by tools/folio_prompt.py
(whose docstring names the C++ each piece mirrors): the pack's
prompts/extract.txt and the schema's field guide as the system turn,
"Document:\\n[page N]\\n<text>\\n...\\nThe JSON record:" as the user turn, in
SmolLM2's ChatML with the assistant turn opened. The schema is read when the
script runs (never a field list of its own). The pages shown are chosen as
Extractor::extract does when a document does not fit: page budget = context -
max_tokens - tokens(system) - 64 with context = --context and max_tokens =
--json-budget (Folio runs with 8192 and 768; a smaller context keeps a
training step to seconds on two cores: 4096 for medical, where every note is
shown whole as Folio shows it, and 2304 for finance, where the four statement
pages fit); page 1, then the pages that best match the schema's words. A
medical context of 2048 cut notes short, and the adapter it trained learned
to leave medications and diagnoses empty.
Completion: the record as Folio's grammar writes it (compact JSON, keys in
schema order, free-text values made of the words of the pages shown, integers
that the pages write; tools/folio_prompt.py copyable_record), then <|im_end|>
(the model's end-of-turn token, which ends generation). The truth is read from
the pages shown only, so a value on a page left out is null / [].

Data
  medical  The 67 ACI-Bench notes (/work/shared/corpus/medical/aci-bench-train.csv,
           CC BY 4.0), each laid out as the clinic-note PDF tools/make_scan_set.py
           renders for the evaluation (page texts as that layout writes them).
           Truth: tools/medical_pack_targets.py (the issue-9 rules of
           tools/make_medical_records.py, extended to the whole schema).
           Split by the note's 0-based row index in the CSV (file order):
           eval = index % 3 == 0 (rows 0, 3, ..., 66: 23 notes); train = the
           others except the notes the pack's own evaluation set holds out
           (make_medical_records.is_held_out: D2N number a multiple of 4,
           domain_packs/medical/eval), so that neither evaluation has seen
           its notes in training: 34 notes (10 held out by the pack's rule
           are used for neither).
  finance  Synthetic statement pages (tools/synthetic_statements.py: a cover
           page, income statement, balance sheet and cash-flow statement with
           varied company names, periods, scales, layouts and line-item names)
           with their known record; seeded. train = seed 1 (--finance-train
           documents), eval = seed 2 (--finance-eval documents). The nine real
           filings in /work/shared/corpus/finance are kept for evaluating the
           app with and without the adapter, never trained on.

Training: the GGUF loaded by transformers (dequantized to f32, as
tools/make_decoder_goldens.py loads it), LoRA (PEFT) of rank --rank (16),
alpha 2 x rank, dropout 0.05 on q, k, v, o, gate, up and down projections;
loss on the completion tokens only; batch 1, AdamW lr --lr (2e-4), linear
warm-up over 4 steps then cosine decay to a tenth over the training's
progress, the larger of the share of the steps of --epochs passes over the
training examples (in a seeded order) and the share of --minutes spent:
training ends at whichever comes first; two CPU threads.
The system turn (about 700-850 tokens, the same in every example of a pack)
is run once by the base model and its keys and values reused by every
example, which runs only its document and completion (so a step costs about
1,000 tokens, about 10 s on two shared cores). The adapter therefore learns
with the system turn as the base model sees it; in Folio the adapter also
shifts the system turn's keys and values a little.
Held-out loss: the mean negative log-likelihood per completion token over
the eval examples, before (the adapter is zero at the start) and after
training, computed the same way.
"""

import argparse
import copy
import csv
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import folio_prompt  # noqa: E402
from make_decoder_goldens import MODELS_DIR  # noqa: E402

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
END_OF_TURN = "<|im_end|>"
MEDICAL_CSV = HERE.parent.parent / "shared/corpus/medical/aci-bench-train.csv"
MEDICAL_SPLIT = ("eval = notes whose 0-based row index in aci-bench-train.csv is divisible by 3 (23); train = the "
                 "others except those make_medical_records.is_held_out keeps for domain_packs/medical/eval (34)")
DEFAULT_CONTEXT = {"medical": 4096, "finance": 2304}
FINANCE_SPLIT = "train = synthetic documents of seed 1; eval = synthetic documents of seed 2"


class PromptBuilder:
    """A pack's (prompt, completion) for a document's pages and its truth."""

    def __init__(self, pack, tokenizer, context, json_budget):
        self.instructions, self.schema, self.key_pages = folio_prompt.load_pack(pack)
        self.system = folio_prompt.system_text(self.instructions, self.schema)
        self.words = folio_prompt.field_words(self.schema)
        self.count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])
        self.budget = folio_prompt.page_budget(context, json_budget, self.count(self.system))

    def chosen_pages(self, pages):
        return folio_prompt.choose_pages(pages, self.budget, self.count, self.words, self.key_pages)

    def example(self, name, pages, chosen, values):
        shown = "".join(pages[n - 1] + "\n" for n in chosen)
        record = folio_prompt.copyable_record(values, self.schema, shown)
        user = folio_prompt.user_text(folio_prompt.document_text(pages, chosen))
        return {"id": name, "pages": chosen, "prompt": folio_prompt.render_chatml(self.system, user),
                "completion": folio_prompt.record_text(record) + END_OF_TURN, "record": record}


def shown_note(pages, chosen):
    """The note text of the pages shown, as make_scan_set's layout wrote it:
    each block's wrapped lines joined again, page 1's title and every page's
    footer left out."""
    lines = []
    for n in chosen:
        blocks = pages[n - 1].split("\n\n")[:-1]
        lines += [" ".join(block.split("\n")) for block in (blocks[1:] if n == 1 else blocks)]
    return "\n\n".join(lines)


def medical_examples(builder):
    import medical_pack_targets
    from make_medical_records import is_held_out
    from make_scan_set import register_fonts, render_note_pdf

    csv.field_size_limit(1 << 30)
    with open(MEDICAL_CSV, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    fonts = register_fonts()
    train, held_out = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for index, row in enumerate(rows):
            name = row["encounter_id"]
            if index % 3 != 0 and is_held_out(name):
                continue
            pages = render_note_pdf(Path(tmp) / f"{name}.pdf", name, row["dataset"], row["note"], fonts)
            chosen = builder.chosen_pages(pages)
            note = row["note"] if len(chosen) == len(pages) else shown_note(pages, chosen)
            example = builder.example(name, pages, chosen, medical_pack_targets.record_values(name, note))
            (held_out if index % 3 == 0 else train).append(example)
    return train, held_out


def finance_examples(builder, n_train, n_eval):
    import synthetic_statements

    def make(seed, count):
        out = []
        for i, (pages, values) in enumerate(synthetic_statements.documents(seed, count)):
            out.append(builder.example(f"synthetic-{seed}-{i:03d}", pages, builder.chosen_pages(pages), values))
        return out

    return make(1, n_train), make(2, n_eval)


def write_examples(path, header, examples):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write(json.dumps({"header": header}, ensure_ascii=False) + "\n")
        for example in examples:
            out.write(json.dumps(example, ensure_ascii=False) + "\n")


class SystemPrefix:
    """The system turn's keys and values, computed once by the base model
    (the adapter off) and shared by every example of the pack, which then
    runs only its document and completion tokens."""

    def __init__(self, model, tokenizer, system):
        text = folio_prompt.render_chatml(system, "").split("<|im_end|>")[0] + "<|im_end|>"
        self.ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad(), model.disable_adapter():
            self.cache = model(input_ids=torch.tensor([self.ids]), use_cache=True).past_key_values

    def split(self, tokenizer, example):
        """(input ids after the prefix, labels): -100 on the prompt's tokens."""
        prompt = tokenizer(example["prompt"], add_special_tokens=False)["input_ids"]
        if prompt[:len(self.ids)] != self.ids:
            raise ValueError(f"{example['id']}: the prompt does not start with the system turn")
        completion = tokenizer(example["completion"], add_special_tokens=False)["input_ids"]
        rest = prompt[len(self.ids):]
        return torch.tensor([rest + completion]), torch.tensor([[-100] * len(rest) + completion])

    def completion_loss(self, model, ids, labels):
        """(mean loss, token count) over the completion tokens."""
        logits = model(input_ids=ids, past_key_values=copy.deepcopy(self.cache), use_cache=True).logits[0, :-1]
        target = labels[0, 1:]
        loss = torch.nn.functional.cross_entropy(logits.float(), target, ignore_index=-100, reduction="sum")
        count = int((target != -100).sum())
        return loss / count, count

    @torch.no_grad()
    def held_out_loss(self, model, batches):
        model.eval()
        total, tokens = 0.0, 0
        for ids, labels in batches:
            loss, count = self.completion_loss(model, ids, labels)
            total += float(loss) * count
            tokens += count
        model.train()
        return total / tokens


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pack", choices=["medical", "finance"])
    parser.add_argument("--out", help="the PEFT adapter folder (default /work/eval/lora/<pack>/peft)")
    parser.add_argument("--data", help="examples and summary (default /work/eval/lora/<pack>)")
    parser.add_argument("--model", default=str(Path(MODELS_DIR) / MODEL_FILE))
    parser.add_argument("--context", type=int, help="default: 4096 for medical, 2304 for finance")
    parser.add_argument("--json-budget", type=int, default=384)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--minutes", type=float, default=25,
                        help="end training after this long even if --epochs are not done (0: no limit)")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--finance-train", type=int, default=120)
    parser.add_argument("--finance-eval", type=int, default=30)
    args = parser.parse_args()
    args.context = args.context or DEFAULT_CONTEXT[args.pack]
    data_dir = Path(args.data or f"/work/eval/lora/{args.pack}")
    out_dir = Path(args.out or data_dir / "peft")

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model_dir, model_file = str(Path(args.model).parent), Path(args.model).name
    tokenizer = AutoTokenizer.from_pretrained(model_dir, gguf_file=model_file)

    builder = PromptBuilder(args.pack, tokenizer, args.context, args.json_budget)
    if args.pack == "medical":
        train, held_out = medical_examples(builder)
        split = MEDICAL_SPLIT
    else:
        train, held_out = finance_examples(builder, args.finance_train, args.finance_eval)
        split = FINANCE_SPLIT
    header = {"pack": args.pack, "split": split, "context": args.context, "json_budget": args.json_budget,
              "page_budget": builder.budget, "model": model_file}
    write_examples(data_dir / "train.jsonl", {**header, "part": "train", "examples": len(train)}, train)
    write_examples(data_dir / "eval.jsonl", {**header, "part": "eval", "examples": len(held_out)}, held_out)

    model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=model_file, dtype=torch.float32,
                                                 attn_implementation="sdpa")
    model = get_peft_model(model, LoraConfig(
        r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.05, bias="none", task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    model.print_trainable_parameters()
    prefix = SystemPrefix(model, tokenizer, builder.system)
    train_batches = [prefix.split(tokenizer, e) for e in train]
    eval_batches = [prefix.split(tokenizer, e) for e in held_out]
    lengths = [ids.shape[1] for ids, _ in train_batches + eval_batches]
    print(f"{args.pack}: {len(train)} train, {len(held_out)} eval examples; system turn {len(prefix.ids)} tokens, "
          f"page budget {builder.budget}; tokens after it min {min(lengths)} mean "
          f"{sum(lengths) / len(lengths):.0f} max {max(lengths)}", flush=True)

    started = time.time()
    before = prefix.held_out_loss(model, eval_batches)
    print(f"held-out loss before: {before:.4f} ({time.time() - started:.0f} s)", flush=True)

    steps = math.ceil(args.epochs * len(train_batches))
    budget = args.minutes * 60 if args.minutes else math.inf
    warmup = 4
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.0)
    rng = random.Random(args.seed)
    order = []
    while len(order) < steps:
        epoch = list(range(len(train_batches)))
        rng.shuffle(epoch)
        order += epoch
    model.train()
    train_started = time.time()
    step, progress = 0, 0.0
    while progress < 1:
        # Progress: the larger of the steps' share and the time budget's share;
        # the learning rate follows it, so a slower machine ends its schedule too.
        factor = (step + 1) / warmup if step < warmup else 0.1 + 0.45 * (1 + math.cos(math.pi * progress))
        for group in optimizer.param_groups:
            group["lr"] = args.lr * factor
        index = order[step]
        step += 1
        step_started = time.time()
        ids, labels = train_batches[index]
        loss, _ = prefix.completion_loss(model, ids, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        progress = max(step / steps, (time.time() - train_started) / budget)
        print(f"step {step}/{steps} epoch {(step - 1) // len(train_batches) + 1} {train[index]['id']} "
              f"tokens {ids.shape[1]} loss {float(loss):.4f} lr {args.lr * factor:.2e} "
              f"{time.time() - step_started:.1f} s", flush=True)
    train_seconds = time.time() - train_started

    after = prefix.held_out_loss(model, eval_batches)
    print(f"held-out loss after: {after:.4f} (before {before:.4f}); training {train_seconds / 60:.1f} min", flush=True)
    model.save_pretrained(out_dir)
    summary = {**header, "train_examples": len(train), "eval_examples": len(held_out), "steps": step,
               "epochs": round(step / len(train_batches), 2), "rank": args.rank, "alpha": 2 * args.rank,
               "lr": args.lr, "seed": args.seed, "threads": args.threads, "train_seconds": round(train_seconds),
               "held_out_loss_before": round(before, 4), "held_out_loss_after": round(after, 4),
               "adapter": str(out_dir)}
    (data_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {out_dir} and {data_dir / 'summary.json'}")


if __name__ == "__main__":
    main()
