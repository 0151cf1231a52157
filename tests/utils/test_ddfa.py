"""utils/ddfa.py: the NaN-skipping SGD, the learning-rate schedule, the training dataset's
safe reading of its labels and its per-sample augmentation."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from tests.synergy3DMM.training.support import built_trainset
from utils.errors import SynergyError


@pytest.fixture(scope="module")
def trainset(tmp_path_factory):
    return built_trainset(tmp_path_factory)


def test_sgd_nan_handler_skips_a_step_whole():
    from utils.ddfa import SGD_NanHandler

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    reference = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    reference.load_state_dict(net.state_dict())
    ours = SGD_NanHandler(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    plain = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    x = torch.randn(8, 4)
    for model, optimizer in ((net, ours), (reference, plain)):
        optimizer.zero_grad()
        model(x).pow(2).sum().backward()
    assert ours.step_handleNan() == (False, None)
    plain.step()
    for p, q in zip(net.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)

    before = [p.detach().clone() for p in net.parameters()]
    moments = [ours.state[p]["momentum_buffer"].clone() for p in net.parameters()]
    ours.zero_grad()
    net(x).pow(2).sum().backward()
    list(net.parameters())[-1].grad[0] = float("nan")  # the last parameter: the original had updated the others
    assert ours.step_handleNan()[0] is True
    for p, b, m in zip(net.parameters(), before, moments):
        torch.testing.assert_close(p.detach(), b, rtol=0, atol=0)
        torch.testing.assert_close(ours.state[p]["momentum_buffer"], m, rtol=0, atol=0)
    list(net.parameters())[0].grad[0, 0] = float("inf")
    list(net.parameters())[-1].grad[0] = 0.0
    assert ours.step_handleNan()[0] is True


def test_learning_rate_schedule_of_train_script():
    from utils.ddfa import learning_rate

    # train_script.sh: lr 0.08, warm-up 5 epochs at 0.2x, then 0.2x at each of 48 and 64
    expected = {1: 0.016, 5: 0.016, 6: 0.08, 48: 0.08, 49: 0.016, 64: 0.016, 65: 0.0032, 80: 0.0032}
    for epoch, lr in expected.items():
        assert learning_rate(epoch, 0.08, 5, (48, 64)) == pytest.approx(lr), epoch
    assert learning_rate(1, 0.001, -1, (15, 25, 30)) == pytest.approx(0.001)  # main_train.py's defaults
    assert learning_rate(31, 0.001, -1, (15, 25, 30)) == pytest.approx(0.001 * 0.2 ** 3)


class _Runs:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_dataset_reads_labels_safely(tmp_path, trainset):
    from synergy3DMM.trainset import CROPS_DIR, LIST_FILE
    from utils.ddfa import DDFADataset

    lines = (trainset / LIST_FILE).read_text().split()
    (tmp_path / "list").write_text("\n".join(lines[:3]))
    wide = np.arange(3 * 102, dtype=np.float32).reshape(3, 102)  # 3DDFA's files hold more columns
    (tmp_path / "wide.pkl").write_bytes(pickle.dumps(wide, protocol=4))
    dataset = DDFADataset(trainset / CROPS_DIR, tmp_path / "list", tmp_path / "wide.pkl")
    image, target = dataset[1]
    assert image.shape == (120, 120, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(target.numpy(), wide[1, :62])

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Runs()))
    with pytest.raises(SynergyError, match="not a pickle of numpy arrays"):
        DDFADataset(trainset / CROPS_DIR, tmp_path / "list", tmp_path / "evil.pkl")
    (tmp_path / "short.pkl").write_bytes(pickle.dumps(wide[:2], protocol=4))
    with pytest.raises(SynergyError, match="has 2 rows but the file list has 3"):
        DDFADataset(trainset / CROPS_DIR, tmp_path / "list", tmp_path / "short.pkl")


def test_augmentation_depends_on_seed_epoch_and_index_only(trainset):
    from synergy3DMM.trainset import CROPS_DIR, LIST_FILE, PARAM_FILE
    from utils.ddfa import DDFADataset, train_transform

    def sample(epoch: int, index: int, noise: int) -> torch.Tensor:
        dataset = DDFADataset(trainset / CROPS_DIR, trainset / LIST_FILE, trainset / PARAM_FILE, gt_transform=True,
                              transform=train_transform(), seed=5)
        dataset.set_epoch(epoch)
        np.random.seed(noise)  # the global state before the call does not matter
        return dataset[index][0]

    torch.testing.assert_close(sample(1, 4, 0), sample(1, 4, 99), rtol=0, atol=0)
    assert not torch.equal(sample(1, 4, 0), sample(2, 4, 0))

