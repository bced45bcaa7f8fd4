"""Shapes, parameter counts and equivalences of the networks in kit.deep.nets."""

import pytest
import torch
from torch import nn

from kit.deep.nets import (
    AttentionPoolHead,
    BankEncoderLayer,
    ExpertBank,
    MaskedAutoencoder,
    SpatioTemporalFusion,
    count_parameters,
    model_stack,
    pool_time,
    upsample_time,
)


def test_expert_parameter_count_matches_third_place():
    # encoder per expert (the 3rd place's sizes): 7 x 16 + 16 input projection, 3,200 positional
    # embedding, 3 x 5,392 encoder layers; attention head per expert: 2 x (16 + 7) weights + 2 biases,
    # plus one 200-sample time prior shared by the bank
    bank = ExpertBank(n_chans=16, n_times=200, n_features=7)
    assert count_parameters(bank.encoder) == 16 * (128 + 3200 + 3 * 5392)
    assert count_parameters(bank.head) == 16 * (2 * 23 + 2) + 200


@pytest.mark.parametrize("n_times", [200, 25])
def test_shapes(n_times):
    bank = ExpertBank(16, n_times, n_features=7)
    assert bank(torch.randn(3, 16, n_times, 7)).shape == (3, 16)
    trial, course, alpha = bank.detail(torch.randn(3, 16, n_times, 7))
    assert trial.shape == (3, 16) and course.shape == alpha.shape == (3, 16, n_times)
    fusion = SpatioTemporalFusion(16)
    assert fusion(torch.randn(3, 16, n_times)).shape == (3, n_times)
    loss, pred, mask = MaskedAutoencoder(n_times, 7)(torch.randn(4, n_times, 7))
    assert loss.ndim == 0 and pred.shape == (4, n_times, 7) and mask.shape == (4, n_times)


def test_attention_pool_head_shapes_and_pooling_by_hand():
    head = AttentionPoolHead(n_chans=3, d_in=5, n_times=4, n_models=2)
    h = torch.randn(6, 3, 4, 5)
    trial, course, alpha = head.detail(h)
    assert trial.shape == (2, 6, 3) and course.shape == alpha.shape == (2, 6, 3, 4)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(2, 6, 3))
    m, b, e = 1, 2, 0  # one entry by hand
    w, c = head.weight.detach(), head.bias.detach()
    score = h[b, e] @ w[0, m, e] + c[0, m, e] + head.time_prior.detach()[m]
    logit = h[b, e] @ w[1, m, e] + c[1, m, e]
    torch.testing.assert_close(trial[m, b, e], (torch.softmax(score, 0) * logit).sum())


def test_models_of_a_batched_head_are_independent_and_slice_back():
    head = AttentionPoolHead(3, 5, 4, n_models=3)
    h = torch.randn(2, 3, 4, 5)
    head(h)[1].sum().backward()
    assert head.weight.grad[:, 1].abs().sum() > 0
    assert torch.all(head.weight.grad[:, [0, 2]] == 0) and torch.all(head.time_prior.grad[[0, 2]] == 0)
    one = AttentionPoolHead(3, 5, 4, n_models=1)
    one.load_state_dict(head.model_state(2))
    with torch.no_grad():
        torch.testing.assert_close(one(h)[0], head(h)[2])
    restacked = model_stack([head.model_state(m) for m in range(3)])
    for k, v in head.state_dict().items():
        torch.testing.assert_close(restacked[k], v)


def test_bank_layer_equals_torch_encoder_layer():
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(16, 4, 128, dropout=0.0, batch_first=True).eval()
    mine = BankEncoderLayer(1, 16, 4, 128, 0.0).eval()
    with torch.no_grad():
        for dst, src in ((mine.qkv, ref.self_attn.in_proj_weight), (mine.out, ref.self_attn.out_proj.weight),
                         (mine.ff1, ref.linear1.weight), (mine.ff2, ref.linear2.weight)):
            dst.weight[0] = src.T
        mine.qkv.bias[0] = ref.self_attn.in_proj_bias
        mine.out.bias[0] = ref.self_attn.out_proj.bias
        mine.ff1.bias[0], mine.ff2.bias[0] = ref.linear1.bias, ref.linear2.bias
        for dst, src in ((mine.norm1, ref.norm1), (mine.norm2, ref.norm2)):
            dst.weight[0], dst.bias[0] = src.weight, src.bias
    x = torch.randn(2, 30, 16)
    torch.testing.assert_close(mine(x[:, None])[:, 0], ref(x), atol=1e-5, rtol=1e-5)


def test_experts_are_independent():
    bank = ExpertBank(4, 10, n_features=5, dropout=0.0)
    out = bank(torch.randn(2, 4, 10, 5))
    out[:, 1].sum().backward()
    w = bank.encoder.layers[0].ff1.weight.grad
    assert w[1].abs().sum() > 0
    assert torch.all(w[[0, 2, 3]] == 0)


def test_random_masking_exact_count_and_loss_on_masked_only():
    mask = MaskedAutoencoder.random_masking(5, 200, 0.4, torch.Generator().manual_seed(0))
    assert mask.sum(1).tolist() == [80] * 5
    x = torch.zeros(1, 4, 2)
    pred = torch.tensor([[[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]]])
    m = torch.tensor([[True, False, True, False]])
    # masked samples 0 and 2: squared errors 1 and 9 -> mean 5
    assert MaskedAutoencoder.forward_loss(x, pred, m).item() == pytest.approx(5.0)


def test_mae_encoder_sees_mask_token_not_input():
    mae = MaskedAutoencoder(10, dropout=0.0).eval()
    x = torch.randn(1, 10, 5)
    mask = torch.zeros(1, 10, dtype=torch.bool)
    mask[0, 3] = True
    x2 = x.clone()
    x2[0, 3] += 100.0  # changing a masked input sample must not change the latent
    torch.testing.assert_close(mae.forward_encoder(x, mask), mae.forward_encoder(x2, mask))


def test_load_mae_encoder_copies_weights_into_every_expert():
    mae = MaskedAutoencoder(25)
    bank = ExpertBank(16, 25)
    bank.load_mae_encoder(mae)
    for e in range(16):
        torch.testing.assert_close(bank.encoder.layers[2].qkv.weight[e], mae.encoder.layers[2].qkv.weight[0])
    with pytest.raises(ValueError, match="pos"):
        ExpertBank(16, 50).load_mae_encoder(mae)


def test_pool_and_upsample():
    x = torch.arange(8.0).reshape(1, 8, 1)
    assert pool_time(x, 4, dim=1)[0, :, 0].tolist() == [1.5, 5.5]
    with pytest.raises(ValueError, match="divisible"):
        pool_time(torch.zeros(1, 10, 1), 4, dim=1)
    y = upsample_time(torch.tensor([[0.0, 1.0]]), 4)
    assert y.tolist() == [[0.0, 0.25, 0.75, 1.0]]
