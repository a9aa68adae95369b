import pytest
import torch
import torchvision
from torch import nn

from models import InputSpec, build_model

# Parameter counts: torchvision's for the ImageNet stem; the CIFAR variant (3x3 stem, 10 classes)
# as in the LAP-SGD code and the widely used kuangliu/pytorch-cifar ResNets.
KNOWN = {
    ("resnet18", 32, 10): 11_173_962,
    ("resnet50", 32, 10): 23_520_842,
    ("resnet18", 32, 100): 11_220_132,
    ("resnet50", 32, 100): 23_705_252,
    ("resnet18", 224, 1000): 11_689_512,
    ("resnet50", 224, 1000): 25_557_032,
    # 002's models, as bapi/LPP-SGD builds them (each module's docstring): He et al. give ResNet-20
    # 0.27 M, Zagoruyko & Komodakis WRN-16-8 11.0 M; SqueezeNet's is the sum over its layers.
    ("resnet20", 32, 10): 272_474,
    ("wrn16_8", 32, 10): 10_965_866,
    ("squeezenet", 32, 10): 734_986,
}


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "size", "classes"), list(KNOWN))
def test_parameter_counts(name, size, classes):
    assert count(build_model(name, InputSpec(classes, size))) == KNOWN[(name, size, classes)]


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_imagenet_stem_matches_torchvision(name):
    ours = build_model(name, InputSpec(1000, 224))
    theirs = getattr(torchvision.models, name)()
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]


def test_cifar_stem_keeps_resolution():
    model = build_model("resnet18", InputSpec(10, 32))
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_width_keeps_depth(name):
    full, narrow = build_model(name, InputSpec(10, 32)), build_model(name, InputSpec(10, 32), width=0.25)
    convs = [m for m in full.modules() if isinstance(m, nn.Conv2d)]
    narrow_convs = [m for m in narrow.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == len(narrow_convs)
    assert narrow.conv1.out_channels == 16 and full.conv1.out_channels == 64
    assert count(narrow) < count(full) / 10
    assert narrow(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize(("name", "paper_millions"), [("resnet20", 0.27), ("wrn16_8", 11.0)])
def test_002_models_match_their_papers_counts(name, paper_millions):
    assert (
        round(count(build_model(name, InputSpec(10, 32))) / 1e6, 2 if paper_millions < 1 else 1)
        == paper_millions
    )


@pytest.mark.parametrize("name", ["resnet20", "wrn16_8", "squeezenet"])
def test_002_models_train_in_channels_last_at_smoke_width(name):
    """Width 1/8 (smoke) in channels_last, forward and backward, for each of 002's models."""
    model = build_model(name, InputSpec(10, 32), 0.125).to(memory_format=torch.channels_last)
    x = torch.randn(8, 3, 32, 32).to(memory_format=torch.channels_last)
    for _ in range(2):
        out = model(x)
        out.sum().backward()
    assert out.shape == (8, 10) and all(p.grad is not None for p in model.parameters())


def test_resnet20_shortcut_is_a_strided_1x1_conv():
    """Subsample + 1x1 conv (the workaround in models/resnet20.py) equals the strided 1x1 conv."""
    from models.resnet20 import Subsample

    conv = nn.Conv2d(4, 8, 1, bias=False)
    strided = nn.Conv2d(4, 8, 1, stride=2, bias=False)
    strided.weight.data.copy_(conv.weight.data)
    x = torch.randn(2, 4, 16, 16)
    torch.testing.assert_close(conv(Subsample(2)(x)), strided(x))


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet20"])
def test_the_blocks_are_torchvisions_bit_for_bit(name, monkeypatch):
    """models/blocks.py against torchvision's blocks: the same parameters from the same seed, and
    the same outputs and gradients, bit for bit."""
    import torchvision.models.resnet as tv

    import models.resnet
    import models.resnet20

    spec = InputSpec(num_classes=10, image_size=32)
    inputs = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))

    def build_and_run():
        torch.manual_seed(0)
        model = build_model(name, spec, width=0.25)
        model(inputs).square().sum().backward()
        return model

    ours = build_and_run()
    monkeypatch.setattr(models.resnet, "DEPTHS", {"resnet18": (tv.BasicBlock, (2, 2, 2, 2)),
                                                  "resnet50": (tv.Bottleneck, (3, 4, 6, 3))})  # fmt: skip
    monkeypatch.setattr(models.resnet, "conv1x1", tv.conv1x1)
    monkeypatch.setattr(models.resnet20, "BasicBlock", tv.BasicBlock)
    monkeypatch.setattr(models.resnet20, "conv1x1", tv.conv1x1)
    theirs = build_and_run()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    for (n, a), b in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b) and torch.equal(a.grad, b.grad), n
