"""Contract of the model-source registry: every registered source has matches/load/describe,
describes itself in one line, is listed by the CLI, and takes the specs of its kind (first
in ``order``); the lookup never guesses between two sources."""
import pytest
import torch

from failmodes.models import (
    ModelError,
    Source,
    create_model,
    describe_models,
    find_source,
    list_sources,
    model_help,
    save_checkpoint,
)
from failmodes.models.specs import ModelSource

SOURCES = list_sources()


@pytest.mark.parametrize("source", SOURCES, ids=[type(s).__name__ for s in SOURCES])
def test_every_source_has_the_contract(source):
    assert isinstance(source, Source)
    for method in ("matches", "load", "describe"):
        assert getattr(type(source), method) is not getattr(Source, method), \
            f"{type(source).__name__} does not implement {method}"
    text = source.describe()
    assert isinstance(text, str) and text.strip() and "\n" not in text
    assert source.syntax and source.kind
    assert type(source).__module__.startswith("failmodes.models.sources.")
    assert source.syntax in model_help()
    assert source.syntax in [r["name"] for r in describe_models()]


def test_the_cli_lists_every_source():
    from typer.testing import CliRunner

    from failmodes.cli import app
    r = CliRunner(env={"COLUMNS": "300"}).invoke(app, ["models"])
    assert r.exit_code == 0, r.output
    r_help = CliRunner(env={"COLUMNS": "300"}).invoke(app, ["evaluate", "--help"])
    flat = " ".join(r_help.output.replace("│", " ").split())
    for s in SOURCES:
        assert s.syntax in r.output and s.describe()[:40] in r.output
        assert s.syntax in flat


ARCH_SPECS = {"small_cnn": "RegistrySource", "tv:resnet18": "TorchvisionSource",
              "timm:resnet10t": "TimmSource", "hf:google/vit-base-patch16-224": "HuggingFaceSource",
              "nets/mine.py:Net": "PythonFileSource", "mypkg.nets:Net": "ModuleSource"}


@pytest.mark.parametrize("arch, want", ARCH_SPECS.items())
def test_each_arch_spec_goes_to_its_source(arch, want):
    assert type(find_source(ModelSource(arch=arch))).__name__ == want


def test_each_model_file_goes_to_its_source(tmp_path):
    net = create_model("small_cnn", width=4)
    save_checkpoint(net, tmp_path / "ck.pt")
    x = torch.rand(2, 3, 32, 32)
    plain = net.net.eval()
    torch.export.save(torch.export.export(plain, (x,)), tmp_path / "m.pt2")
    torch.jit.trace(plain, x).save(str(tmp_path / "ts.pt"))
    (tmp_path / "m.onnx").write_bytes(b"")  # the suffix decides; nothing is read
    want = {"ck.pt": "CheckpointSource", "m.pt2": "ExportedProgramSource",
            "ts.pt": "TorchScriptSource", "m.onnx": "OnnxSource"}
    for name, cls in want.items():
        assert type(find_source(ModelSource(weights=str(tmp_path / name)))).__name__ == cls
    with pytest.raises(ModelError, match="not found"):
        find_source(ModelSource(weights=str(tmp_path / "missing.pt")))
    with pytest.raises(ModelError, match="needs --model ARCH"):
        find_source(ModelSource())


def test_a_prefixed_source_wins_over_module_callable():
    """module:callable takes any ``X:Y``; each prefixed source comes before it in ``order``."""
    catch_all = next(s for s in SOURCES if type(s).__name__ == "ModuleSource")
    for arch in ARCH_SPECS:
        takers = [s for s in SOURCES if s.matches(ModelSource(arch=arch))]
        assert takers[0] is find_source(ModelSource(arch=arch))
        assert len([s for s in takers if s is not catch_all]) <= 1, (arch, takers)


def test_check_model_fails_fast_naming_the_unknown_name():
    from failmodes.models import check_model
    check_model("small_cnn")
    check_model({"arch": "tv:resnet18"})
    with pytest.raises(ModelError, match="unknown model 'resnet_from_mars'"):
        check_model({"arch": "resnet_from_mars"})
    with pytest.raises(ModelError, match="tv:nope is not a torchvision classifier"):
        check_model("tv:nope")
    with pytest.raises(ModelError, match="cannot import no_such_pkg"):
        check_model("no_such_pkg.nets:Net")


def test_load_model_takes_weights_as_a_keyword(tmp_path):
    from failmodes.models import load_model, weights_hash
    torch.manual_seed(0)
    net = create_model("small_cnn").net
    torch.save(net.state_dict(), tmp_path / "w.pt")
    a = load_model("small_cnn", weights=tmp_path / "w.pt", data_classes=list("abcdefghij"),
                   say=lambda line: None)
    b = load_model({"arch": "small_cnn", "weights": str(tmp_path / "w.pt")},
                   data_classes=list("abcdefghij"), say=lambda line: None)
    assert weights_hash(a.net) == weights_hash(net)
    assert weights_hash(a) == weights_hash(b) and a.source == b.source
