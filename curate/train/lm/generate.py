"""Seeded sampling from a trained language model: :func:`generate`.

Each prompt starts a new document: it is encoded after the end-of-document token
(as every packed document follows one), then ``max_new_tokens`` ids are drawn one at a time from
``softmax(logits / temperature)`` restricted to the ``top_k`` most likely ids, with
``banned`` ids never drawn (e.g. the control tokens when prompting with one). A sample
stops early at the end-of-document token. The window slides when a sample outgrows
the model's context. Draws come from one ``torch.Generator`` seeded with ``seed``, so
the same model, prompts and seed give the same texts.
"""

from __future__ import annotations

import torch

from curate.core.errors import CurateError


@torch.no_grad()
def generate(model, tokenizer, prompts: list[str], *, max_new_tokens: int = 128,
             temperature: float = 1.0, top_k: int | None = None, banned=(), seed: int = 0,
             batch_size: int = 64) -> list[str]:
    """One generated continuation (without its prompt) per prompt, in prompt order.

    ``banned``: special-token strings or ids that are never sampled. The end-of-document
    token ends a sample (it is not part of the text) unless it is banned.
    """
    if temperature <= 0:
        raise CurateError(f"temperature must be positive, got {temperature}")
    if top_k is not None and top_k < 1:
        raise CurateError(f"top_k must be at least 1, got {top_k}")
    banned_ids = sorted({tokenizer.token_id(b) if isinstance(b, str) else int(b)
                         for b in banned})
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(prompts), batch_size):
        out += _sample(model, tokenizer, prompts[start:start + batch_size], max_new_tokens,
                       temperature, top_k, banned_ids, generator, device)
    model.train(was_training)
    return out


def _sample(model, tokenizer, prompts, max_new_tokens, temperature, top_k, banned_ids,
            generator, device) -> list[str]:
    seqs = [[tokenizer.eod_id, *tokenizer.encode(p).tolist()] for p in prompts]
    new = [[] for _ in prompts]
    done = [False] * len(prompts)
    context = model.context
    for _ in range(max_new_tokens):
        live = [i for i, d in enumerate(done) if not d]
        if not live:
            break
        # No padding: rows whose windows have the same length run as one batch.
        groups: dict[int, list[int]] = {}
        for i in live:
            groups.setdefault(min(context, len(seqs[i])), []).append(i)
        for width, rows in sorted(groups.items()):
            x = torch.tensor([seqs[i][-width:] for i in rows], device=device)
            logits = model(x)[:, -1, :].float() / temperature
            if banned_ids:
                logits[:, banned_ids] = float("-inf")
            if top_k is not None and top_k < logits.shape[1]:
                kth = torch.topk(logits, top_k, dim=1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = torch.softmax(logits, dim=1)
            picks = torch.multinomial(probs, 1, generator=generator).squeeze(1).tolist()
            for i, token in zip(rows, picks):
                if token == tokenizer.eod_id:
                    done[i] = True
                    continue
                seqs[i].append(token)
                new[i].append(token)
    return [tokenizer.decode(ids) for ids in new]
