"""The contract of every registered data spec (a new spec is tested for free), the
registry's lookups, and the help and docstring generated from it (issue 30)."""
from pathlib import Path

import pytest

import failmodes.data
from failmodes.data import (
    CorruptedSpec,
    DataError,
    DataSpec,
    absolute_spec,
    data_help,
    find_data_spec,
    get_data_spec,
    list_corrupted_specs,
    list_data_specs,
    load_corrupted,
    load_dataset,
    register_data_spec,
)

SPECS = list_data_specs()


def _example(form: str, folder: Path) -> str:
    """A spec written in ``form`` (``imagenet:PATH``, ``hf:NAME[:split]``)."""
    return form.replace("NAME[:split]", "some-org/some-set:test").replace("PATH", str(folder))


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_every_spec_declares_itself(spec):
    assert isinstance(spec, DataSpec) and spec.name and spec.forms and spec.what
    line = spec.describe()
    assert line and "\n" not in line and all(f in line for f in spec.forms)
    assert spec.what in line and spec.splits in line
    # Every kind implements its loader; a corrupted set its cells and their survey too.
    assert type(spec).load is not DataSpec.load
    if isinstance(spec, CorruptedSpec):
        assert type(spec).load_cell is not CorruptedSpec.load_cell
        assert type(spec).survey is not CorruptedSpec.survey
        assert spec.title and spec.needs_arg
        clean = get_data_spec(spec.clean)
        assert not isinstance(clean, CorruptedSpec)


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_every_form_finds_its_spec(spec, tmp_path):
    for form in spec.forms:
        text = _example(form, tmp_path)
        assert spec.matches(text) or spec.fallback
        assert find_data_spec(text) is spec, form
        if "PATH" in form:
            assert spec.argument(text) == str(tmp_path)


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_a_spec_that_needs_a_path_says_so(spec):
    if not spec.needs_arg:
        return
    with pytest.raises(DataError, match=f"needs a path: {spec.name}:PATH"):
        load_dataset(spec.name)


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_help_table_and_unknown_spec_error_list_every_spec(spec):
    from failmodes.cli._app import DATA_HELP, OFFICIAL_HELP
    for form in spec.forms:
        assert form in DATA_HELP and form in data_help()
        assert f"``{form}``" in (failmodes.data.__doc__ or "")
    assert (spec.forms[0] in OFFICIAL_HELP.split(" | ")) == isinstance(spec, CorruptedSpec)
    with pytest.raises(DataError) as e:
        find_data_spec("bogus:x")
    assert all(f in str(e.value) for f in spec.forms) and "\n" not in str(e.value)


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_folder_specs_are_saved_absolute(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here").mkdir()
    for form in spec.forms:
        if "PATH" not in form:
            continue
        saved = absolute_spec(form.replace("PATH", "here"))
        assert find_data_spec(saved) is spec
        assert Path(spec.argument(saved)) == tmp_path / "here", saved
        assert absolute_spec(saved) == saved


def test_synthetic_loads_offline_through_its_spec():
    spec = find_data_spec("synthetic")
    ds = spec.load("", "train")
    assert ds.images.shape == (6000, 32, 32, 3) and ds.name == "synthetic"
    assert load_dataset("synthetic", "test").images.shape == (2000, 32, 32, 3)
    val = load_dataset("synthetic", "train-val")
    assert (val.split, len(val)) == ("train-val", 600)


def test_lookups_and_their_errors(tmp_path, monkeypatch):
    # A folder named like a spec still means the spec: the bare folder is tried last.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "synthetic").mkdir()
    assert find_data_spec("synthetic").name == "synthetic"
    assert absolute_spec("synthetic") == "synthetic"
    assert absolute_spec("bogus:x") == "bogus:x"  # loading it names the error
    assert absolute_spec("hf:some-org/some-set:test") == "hf:some-org/some-set:test"
    (tmp_path / "saved").mkdir()
    assert absolute_spec("hf:saved?label=fine") == f"hf:{tmp_path / 'saved'}?label=fine"
    assert {s.name for s in list_corrupted_specs()} == {
        "cifar10c", "cifar100c", "imagenetc", "tinyimagenetc"}
    with pytest.raises(DataError, match="'synthetic' is not a released corrupted set; use "
                                        "one of cifar10c:PATH"):
        load_corrupted("synthetic", "fog", 3)
    with pytest.raises(DataError, match="unknown data spec 'nope'"):
        get_data_spec("nope")


def test_a_spec_is_registered_once_and_whole():
    with pytest.raises(ValueError, match="'synthetic' registered twice"):
        register_data_spec(type(find_data_spec("synthetic")))

    class Nameless(DataSpec):
        forms = ("x",)
        what = "nothing"

    with pytest.raises(TypeError, match="Nameless sets no name"):
        register_data_spec(Nameless)
    assert "x" not in data_help().split(" | ")
