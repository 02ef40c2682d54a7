"""The loss functions on hand-made tensors: each against a direct re-derivation or a known value."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from retr.training import losses as O


def test_info_nce_matches_per_query_softmax():
    torch.manual_seed(0)
    q, p = torch.randn(3, 5), torch.randn(6, 5)  # 3 queries, groups of 2 (positive, negative)
    loss = O.info_nce(q, p, 0.05)
    expected = 0.0
    for i in range(3):
        sims = torch.tensor([F.cosine_similarity(q[i], p[j], dim=0) for j in range(6)]) / 0.05
        expected += -(sims[2 * i] - torch.logsumexp(sims, 0))
    assert math.isclose(float(loss), float(expected) / 3, rel_tol=1e-5)


def test_info_nce_is_low_when_positives_align():
    q = torch.eye(4)[:2]
    p = torch.stack([torch.eye(4)[0], torch.eye(4)[2], torch.eye(4)[1], torch.eye(4)[3]])
    assert float(O.info_nce(q, p, 0.05)) < 1e-6
    assert float(O.info_nce(q, p.flip(0), 0.05)) > 1.0


def test_kl_is_zero_when_distributions_are_equal_and_positive_otherwise():
    emb = torch.tensor([[0.9, 0.1, -0.3], [0.2, 0.5, 0.4]])
    # P_gen with gen_temperature equal to the retrieval temperature and the same scores: identical distributions
    assert abs(float(O.kl(emb, emb.clone(), 0.05, 0.05))) < 1e-7
    # a shift per query does not change a softmax either
    assert abs(float(O.kl(emb, emb + torch.tensor([[3.0], [-1.0]]), 0.05, 0.05))) < 1e-6
    assert float(O.kl(emb, emb.flip(1), 0.05, 0.05)) > 0.1


def test_kl_matches_the_definition():
    emb, gen = torch.tensor([[0.3, 0.1]]), torch.tensor([[-2.0, -1.0]])
    p_rt = torch.softmax(emb / 0.05, -1)[0]
    p_gen = torch.softmax(gen, -1)[0]
    expected = sum(float(p_rt[i] * math.log(p_rt[i] / p_gen[i])) for i in range(2))
    assert math.isclose(float(O.kl(emb, gen, 0.05, 1.0)), expected, rel_tol=1e-5)


def test_dpo_is_log2_when_policy_equals_reference_and_prefers_positive():
    pos, neg = torch.tensor([-10.0, -20.0]), torch.tensor([-12.0, -5.0])
    assert math.isclose(float(O.dpo(pos, neg, pos, neg, 0.1)), math.log(2), rel_tol=1e-6)
    better = float(O.dpo(pos + 5, neg - 5, pos, neg, 0.1))
    assert better < math.log(2)
    assert math.isclose(better, -math.log(1 / (1 + math.exp(-0.1 * 10))), rel_tol=1e-6)


def test_sft_is_mean_token_nll():
    assert math.isclose(float(O.sft(torch.tensor([-6.0, -2.0]), torch.tensor([3.0, 1.0]))), (2 + 2) / 2)


def test_group_scores_take_own_group():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 2.0]])
    torch.testing.assert_close(O.group_scores(q, p), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
