"""Language models in the harness: tokenizers, packed token pools, a small GPT, its
trainer and seeded generation.

    from curate.train.lm import ByteTokenizer, LMConfig, pack_pool, train_lm, generate
    tok = ByteTokenizer()
    pool = pack_pool(lambda: iter([texts]), tok)
    run = train_lm(LMConfig(tokens=2_000_000, eval_every=100), pool, {"prose": heldout})
    run.final["prose_bpb"]

Pools are built from text batches, not from files: reading a dataset or a selection is
the experiment layer's job (:mod:`curate.experiment.text`).
"""

from curate.train.lm.generate import generate
from curate.train.lm.gpt import GPT, SIZES
from curate.train.lm.pool import TokenPool, pack_pool, prefix_pool
from curate.train.lm.seeds import train_lm_seeds
from curate.train.lm.tokenizer import (
    EOD,
    BpeTokenizer,
    ByteTokenizer,
    load_tokenizer,
    make_tokenizer,
    train_bpe,
)
from curate.train.lm.trainer import LMConfig, LMRun, bf16_supported, build_lm, evaluate_lm, train_lm

__all__ = ["EOD", "GPT", "SIZES", "BpeTokenizer", "ByteTokenizer", "LMConfig", "LMRun",
           "TokenPool", "bf16_supported", "build_lm", "evaluate_lm", "generate",
           "load_tokenizer", "make_tokenizer", "pack_pool", "prefix_pool", "train_bpe", "train_lm",
           "train_lm_seeds"]
