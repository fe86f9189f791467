"""Language models in the harness: tokenizers, token pools, the GPT, its trainer and
generation."""

import json
import math
import pickle

import numpy as np
import pytest
import torch

from curate.core.errors import CurateError
from curate.io import Source
from curate.train.lm import (
    EOD,
    BpeTokenizer,
    ByteTokenizer,
    LMConfig,
    build_lm,
    evaluate_lm,
    generate,
    load_tokenizer,
    pack_pool,
    train_bpe,
    train_lm,
    train_lm_seeds,
)
from curate.train.models import make_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"n_layer": 1, "n_head": 2, "n_embd": 32}


@pytest.fixture(scope="module")
def texts():
    table = Source("builtin:quickstart").read_all()
    return table.column("text").to_pylist()


def batches(texts):
    return lambda: iter([texts[i:i + 50] for i in range(0, len(texts), 50)])


@pytest.fixture(scope="module")
def pools(texts, tmp_path_factory):
    cache = tmp_path_factory.mktemp("tokens")
    tok = ByteTokenizer()
    return (pack_pool(batches(texts[:300]), tok, cache=cache),
            pack_pool(batches(texts[300:360]), tok, cache=cache, name="heldout"))


def tiny_config(**changes):
    return LMConfig(**{"model_params": TINY, "context": 32, "batch_size": 4,
                       "tokens": 4 * 32 * 6, "precision": "fp32", **changes})


# -- tokenizers ---------------------------------------------------------------------------
def test_byte_tokens_round_trip_with_special_tokens_as_single_ids():
    tok = ByteTokenizer(["<|good|>", "<|bad|>"])
    ids = tok.encode("<|good|>héllo<|bad|>")
    assert ids[0] == tok.token_id("<|good|>") == 257 and ids[-1] == 258
    assert ids[1:-1].tolist() == list("héllo".encode())
    assert tok.decode(ids) == "<|good|>héllo<|bad|>"
    assert tok.vocab_size == 259 and tok.eod_id == 256
    assert tok.token_bytes()[:256].sum() == 256 and tok.token_bytes()[256:].sum() == 0


def test_bpe_trains_saves_as_tokenizer_json_and_loads_the_same(texts, tmp_path):
    tok = train_bpe(batches(texts[:200])(), vocab_size=400, control=["<|good|>"])
    assert tok.vocab_size == 400
    path = tok.save(tmp_path / "tokenizer.json")
    assert json.loads(path.read_text())["model"]["type"] == "BPE"  # plain JSON, no pickle
    again = load_tokenizer(path)
    assert isinstance(again, BpeTokenizer) and again.fingerprint == tok.fingerprint
    sample = "<|good|>def f(x):\n    return x"
    ids = again.encode(sample)
    assert ids[0] == again.token_id("<|good|>") and len(ids) < len(sample.encode())
    assert again.decode(ids) == sample
    # byte lengths of the tokens add up to the text's bytes (the special token counts 0)
    assert again.token_bytes()[ids].sum() == len(sample.encode()) - len("<|good|>")


def test_a_saved_byte_tokenizer_loads_back(tmp_path):
    tok = ByteTokenizer(["<|x|>"])
    again = load_tokenizer(tok.save(tmp_path / "tokenizer.json"))
    assert isinstance(again, ByteTokenizer) and again.specials == [EOD, "<|x|>"]


def test_bad_tokenizer_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(CurateError, match="repeat"):
        ByteTokenizer(["<|a|>", "<|a|>"])
    with pytest.raises(CurateError, match="not a special token"):
        ByteTokenizer().token_id("<|good|>")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(CurateError, match="bad.json"):
        load_tokenizer(tmp_path / "bad.json")


# -- pools --------------------------------------------------------------------------------
def test_a_pool_is_the_documents_each_followed_by_the_end_token(tmp_path):
    tok = ByteTokenizer()
    pool = pack_pool(lambda: iter([["ab", "c"], ["déf"]]), tok, cache=tmp_path)
    assert pool.tokens.tolist() == [97, 98, 256, 99, 256, 100, 195, 169, 102, 256]
    assert isinstance(pool.tokens, np.memmap)
    assert pool.meta["documents"] == 3 and pool.n_bytes == 7 and pool.n_tokens == 10
    assert pool.n_sequences(3) == 3
    seq = pool.sequences(np.array([1, 0]), 3)
    assert seq.tolist() == [[99, 256, 100, 195], [97, 98, 256, 99]]
    assert pickle.loads(pickle.dumps(pool)) == pool  # travels to processes as a path


def test_pools_are_keyed_by_texts_and_tokenizer(tmp_path):
    one = pack_pool(lambda: iter([["same text"]]), ByteTokenizer(), cache=tmp_path)
    again = pack_pool(lambda: iter([["same", " text"][:1] + [" text"]]), ByteTokenizer(),
                      cache=tmp_path)
    same = pack_pool(lambda: iter([["same text"]]), ByteTokenizer(), cache=tmp_path)
    other_tok = pack_pool(lambda: iter([["same text"]]), ByteTokenizer(["<|g|>"]),
                          cache=tmp_path)
    assert same.path == one.path
    assert len({one.path, again.path, other_tok.path}) == 3  # doc boundaries count
    with pytest.raises(CurateError, match="no documents"):
        pack_pool(lambda: iter([]), ByteTokenizer(), cache=tmp_path)


# -- the model ----------------------------------------------------------------------------
def test_gpt_is_causal_with_tied_embeddings_and_preset_sizes():
    torch.manual_seed(0)
    model = make_model("gpt", (16,), 260, **TINY)
    assert model.head.weight is model.wte.weight
    x = torch.randint(0, 260, (2, 16))
    y = x.clone()
    y[:, 10:] = (y[:, 10:] + 1) % 260  # change only the future
    with torch.no_grad():
        a, b = model(x), model(y)
    assert a.shape == (2, 16, 260)
    assert torch.allclose(a[:, :10], b[:, :10]) and not torch.allclose(a[:, 10:], b[:, 10:])
    counts = {s: sum(p.numel() for p in make_model("gpt", (256,), 257, size=s).parameters())
              for s in ("xs", "s", "m")}
    assert 0.4e6 < counts["xs"] < 0.5e6 and 3e6 < counts["s"] < 3.5e6
    assert 9e6 < counts["m"] < 11e6
    with pytest.raises(CurateError, match="exceed the context"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(CurateError, match="unknown gpt size"):
        make_model("gpt", (16,), 260, size="xl")


# -- training -----------------------------------------------------------------------------
def test_training_lowers_held_out_loss_and_is_bit_for_bit_deterministic(pools):
    train, heldout = pools
    config = tiny_config(eval_every=2, lr=3e-3)
    one = train_lm(config, train, {"h": heldout}, seed=3)
    two = train_lm(config, train, {"h": heldout}, seed=3)
    other = train_lm(config, train, {"h": heldout}, seed=4)
    assert [r["step"] for r in one.history] == [2, 4, 6]
    assert one.history[-1]["tokens"] == 6 * 4 * 32 == config.tokens
    assert one.history[-1]["h_loss"] < math.log(257)  # better than uniform over the vocab
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(one.history) == strip(two.history)
    assert all(torch.equal(one.state[k], two.state[k]) for k in one.state)
    assert strip(one.history) != strip(other.history)
    assert one.final["epochs"] == pytest.approx(config.tokens / (train.n_sequences(32) * 32))
    assert one.final["precision"] == "fp32"


def test_bits_per_byte_is_summed_loss_over_ln2_over_bytes(pools):
    train, heldout = pools
    config = tiny_config()
    model = build_lm(config, 257)
    loss, bpb = evaluate_lm(model, heldout, config)
    seq = heldout.sequences(np.arange(heldout.n_sequences(32)), 32)
    targets = torch.from_numpy(seq[:, 1:])
    with torch.no_grad():
        logits = model(torch.from_numpy(seq[:, :-1]))
    total = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                              reduction="sum").item()
    real_bytes = int((targets < 256).sum())  # the end-of-document token has no bytes
    assert loss == pytest.approx(total / targets.numel(), rel=1e-5)
    assert bpb == pytest.approx(total / math.log(2) / real_bytes, rel=1e-5)


def test_a_budget_larger_than_the_pool_repeats_it(tmp_path):
    pool = pack_pool(lambda: iter([["x" * 200]]), ByteTokenizer(), cache=tmp_path)
    run = train_lm(tiny_config(tokens=4 * 32 * 12), pool, seed=0)
    assert run.final["epochs"] == pytest.approx(12 * 4 / 6)  # 6 sequences of 32


def test_seeds_in_processes_equal_seeds_here(pools):
    train, heldout = pools
    config = tiny_config(tokens=4 * 32 * 2)
    here = train_lm_seeds(config, train, {"h": heldout}, seeds=(0, 1))
    there = train_lm_seeds(config, train, {"h": heldout}, seeds=(0, 1), workers=2)
    assert [r.final["h_bpb"] for r in here] == [r.final["h_bpb"] for r in there]


def test_bad_configs_are_one_line_errors(pools, tmp_path):
    with pytest.raises(CurateError, match="precision"):
        LMConfig(precision="fp8")
    with pytest.raises(CurateError, match="tokens"):
        LMConfig(tokens=0)
    with pytest.raises(CurateError, match="unknown gpt size"):  # before any data is read
        LMConfig(model_params={"size": "xl"})
    short = pack_pool(lambda: iter([["ab"]]), ByteTokenizer(), cache=tmp_path)
    with pytest.raises(CurateError, match="fewer than one sequence"):
        train_lm(tiny_config(), short)
    other = pack_pool(lambda: iter([["ab" * 100]]), ByteTokenizer(["<|q|>"]), cache=tmp_path)
    with pytest.raises(CurateError, match="another tokenizer"):
        train_lm(tiny_config(), pools[0], {"o": other})
    if not torch.cuda.is_available():
        with pytest.raises(CurateError, match="no GPU"):
            train_lm(tiny_config(device="cuda"), pools[0])


# -- generation ---------------------------------------------------------------------------
def test_generation_is_seeded_respects_bans_and_top_k(pools):
    tok = ByteTokenizer(["<|good|>"])
    torch.manual_seed(0)
    model = build_lm(tiny_config(), tok.vocab_size)
    kwargs = dict(max_new_tokens=40, banned=["<|good|>", EOD])
    a = generate(model, tok, ["<|good|>", "The "], seed=5, **kwargs)
    b = generate(model, tok, ["<|good|>", "The "], seed=5, **kwargs)
    c = generate(model, tok, ["<|good|>", "The "], seed=6, **kwargs)
    assert a == b and a != c
    assert all("<|good|>" not in t and EOD not in t for t in a)
    assert all(len(t.encode("utf-8", "surrogatepass")) >= 1 for t in a)
    # top-k 1 is greedy: the same text whatever the seed
    greedy = [generate(model, tok, ["x"], top_k=1, max_new_tokens=10, banned=[EOD], seed=s)
              for s in (0, 1)]
    assert greedy[0] == greedy[1]
    with pytest.raises(CurateError, match="temperature"):
        generate(model, tok, ["x"], temperature=0)
