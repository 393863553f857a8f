"""A user's own net: named by file or module, hashed by its source, probed before training."""

import dataclasses
import shutil
from pathlib import Path

import pytest

from mnistlab.errors import MnistlabError
from mnistlab.names import MODEL_ARTIFACTS, MODEL_FILE_TAG, MODEL_SHA256_TAG
from mnistlab.spec.parse import load_spec, spec_from_record
from mnistlab.spec.record import to_record
from mnistlab.spec.run import ConfigError
from mnistlab.store.store import open_store
from mnistlab.study.run import check_nets, run_study
from mnistlab.training.models import UnknownModelError
from tests.conftest import invoke, refused

NET = """
from torch import nn

class Tiny(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x):
        return self.net(x)

class Wide(Tiny):
    def forward(self, x):
        return self.net(x).repeat(1, 2)

class Raises(Tiny):
    def forward(self, x):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

class NotANet:
    pass
"""

# A net with nothing to train: an optimizer over it gets an empty parameter list.
FIXED = """
class Fixed(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()

    def forward(self, x):
        return x.flatten(1)[:, :10]
"""

# A net whose constructor raises: the message names the exception, not only its text.
BROKEN = """
class Broken(Tiny):
    def __init__(self, hidden=16):
        raise KeyError("boom in init")
"""

SPEC = """
name = "own"
seeds = 2
thresholds = [0.2]
[settings]
train_size = 200
batch_size = 40
eval_every = 2
eval_subset = 100
threads = 1
[arms.cnn2]
model = "cnn2"
[arms.mine]
model = "nets/net.py:{cls}"
model_args = {{ hidden = 8 }}
"""


def write_study(tmp_path: Path, cls: str = "Tiny", net: str = NET) -> Path:
    (tmp_path / "nets").mkdir(exist_ok=True)
    (tmp_path / "nets" / "net.py").write_text(net)
    path = tmp_path / "own.toml"
    path.write_text(SPEC.format(cls=cls))
    return path


def test_the_files_hash_is_part_of_the_config_and_editing_it_makes_new_runs(tmp_path):
    path = write_study(tmp_path)
    spec = load_spec(path)
    config = spec.arm_config(spec.arm("mine"), 0)
    assert config.model_source == str((tmp_path / "nets" / "net.py").resolve())
    assert len(config.model_sha256) == 64 and "model_source" not in config.identity()
    (tmp_path / "nets" / "net.py").write_text(NET + "\n# edited\n")
    again = load_spec(path)
    edited = again.arm_config(again.arm("mine"), 0)
    assert edited.config_hash() != config.config_hash()
    assert load_spec(path).arm_config(spec.arm("cnn2"), 0) == spec.arm_config(spec.arm("cnn2"), 0)


def test_a_stored_spec_reads_back_without_the_file(tmp_path):
    spec = load_spec(write_study(tmp_path))
    record = to_record(spec)
    shutil.rmtree(tmp_path / "nets")
    assert spec_from_record(record).arm_by_hash() == spec.arm_by_hash()


def test_a_missing_file_is_refused_when_the_spec_is_read(tmp_path):
    path = write_study(tmp_path)
    (tmp_path / "nets" / "net.py").unlink()
    with pytest.raises(ConfigError, match=r"arms.mine.model.*no file .*net.py.*relative to"):
        load_spec(path)


def test_a_module_path_names_an_importable_module(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SPEC.format(cls="Tiny").replace("nets/net.py:Tiny", "no_such_pkg.nets:Net"))
    with pytest.raises(ConfigError, match="no module 'no_such_pkg.nets' on the import path"):
        load_spec(path)
    path.write_text(SPEC.format(cls="Tiny").replace("nets/net.py:Tiny", "examples.nets:SmallMLP"))
    check_nets(load_spec(path))  # examples/ is a folder on the import path from the repo root


@pytest.mark.parametrize(
    "cls, net, phrases",
    [
        ("Tiny", NET + "\ndef broken(:\n", ["line 23: a syntax error"]),
        ("NotANet", NET, ["NotANet", "not a subclass of torch.nn.Module"]),
        (
            "Fixed",
            NET + FIXED,
            ["arm mine: the net", "has no trainable parameters", "torch.nn.Parameter"],
        ),
        ("Nope", NET, ["has no Nope", "Tiny, Wide, Raises"]),
        (
            "Tiny",
            "import not_installed_pkg.sub\n" + NET,
            ["raised ModuleNotFoundError", "-m pip install not_installed_pkg;"],
        ),
        ("Tiny", "1 / 0\n" + NET, ["raised ZeroDivisionError", "run `python "]),
        ("Raises", NET, ["Raises raised RuntimeError", "logits (N, 10)"]),
        (
            "Broken",
            NET + BROKEN,
            ["building the net raised KeyError: 'boom in init'", "Fix its __init__"],
        ),
        (
            "Wide",
            NET,
            ["Wide returned a tensor of shape (2, 20)", "expected logits of shape (2, 10)"],
        ),
    ],
)
def test_a_net_that_cannot_train_is_refused_before_the_store(tmp_path, cls, net, phrases):
    path = write_study(tmp_path, cls, net)
    with pytest.raises(MnistlabError) as error:
        check_nets(load_spec(path))
    for phrase in phrases:
        assert phrase in str(error.value)
    result = invoke("study", str(path), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}")
    refused(result, *phrases)
    assert not (tmp_path / "m.db").exists()


def test_wrong_model_args_name_the_accepted_ones(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SPEC.replace("hidden = 8", "hiden = 8").format(cls="Tiny"))
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "net.py").write_text(NET)
    with pytest.raises(UnknownModelError, match="unexpected keyword argument 'hiden'"):
        check_nets(load_spec(path))
    path.write_text(
        SPEC.format(cls="Tiny")
        .replace("nets/net.py:Tiny", "cnn2")
        .replace("hidden = 8", "dropot = 1")
    )
    with pytest.raises(ConfigError) as error:  # at spec read, before any net is built
        load_spec(path)
    assert "key 'arms.mine.model_args': model 'cnn2' takes no argument 'dropot'" in str(error.value)
    assert "It accepts: dropout, batchnorm, channels." in str(error.value)


def test_model_args_for_a_registered_net_without_arguments_are_refused_at_spec_read(
    tmp_path, monkeypatch
):
    from torch import nn

    from mnistlab.training import registry

    class Fixed(nn.Module):
        def __init__(self):
            super().__init__()

    monkeypatch.setitem(registry.MODELS, "fixed", Fixed)
    monkeypatch.setitem(registry.MODELS, "open", lambda **kwargs: Fixed())
    path = tmp_path / "s.toml"
    text = 'name = "x"\nseeds = 2\n[settings]\nmodel_args = { width = 3 }\n'
    path.write_text(text + '[arms.a]\nmodel = "fixed"\n[arms.b]\nmodel = "cnn2"\n')
    with pytest.raises(ConfigError) as error:
        load_spec(path)
    assert str(error.value) == (
        f"{path}: key 'settings.model_args': model 'fixed' takes no argument 'width'. It takes "
        'no arguments. Remove or correct it, or name your own net as "path/to/file.py:'
        'ClassName" to pass others.'
    )
    path.write_text(text + '[arms.a]\nmodel = "open"\n[arms.b]\nmodel = "open"\nlr = 0.1\n')
    assert load_spec(path).arm_config(load_spec(path).arms[0], 0).model_args == {"width": 3}


def test_a_user_net_trains_tracked_with_its_file_and_analyses_without_it(
    tmp_path, tiny_mnist, store_uri
):
    from mnistlab.results.evidence import analyse

    spec = load_spec(write_study(tmp_path))
    report = run_study(spec, store_uri, data=tiny_mnist)
    assert not any(o.failed for o in report.outcomes) and len(report.outcomes) == 4
    store = open_store(store_uri)
    mine = [r for r in store.runs(report.experiment_id) if r.tags.get("arm") == "mine"]
    assert len(mine) == 2
    config = spec.arm_config(spec.arm("mine"), 0)
    assert mine[0].tags[MODEL_SHA256_TAG] == config.model_sha256
    assert mine[0].tags[MODEL_FILE_TAG] == config.model_source
    assert f"{MODEL_ARTIFACTS}/net.py" in store.list_files(mine[0].run_id, MODEL_ARTIFACTS)
    shutil.rmtree(tmp_path / "nets")  # analysis reads the store alone
    results = analyse(store, "own")
    assert set(results.spec.arm_names) == {"cnn2", "mine"}


def test_a_net_file_changed_after_the_spec_was_read_is_refused_where_it_trains(
    tmp_path, tiny_mnist, store_uri
):
    """A Ray worker with another copy of the file, or an edit while a study runs: the run must
    not record one net's numbers under the identity (config hash) of another."""
    from mnistlab.training.loop import train
    from mnistlab.training.registry import UserNetError, check_user_source

    spec = load_spec(write_study(tmp_path))
    config = dataclasses.replace(
        spec.arm_config(spec.arm("mine"), 0), train_size=40, eval_subset=20
    )
    check_user_source(config.model_source, config.model_sha256)  # the file as hashed: fine
    (tmp_path / "nets" / "net.py").write_text(NET + "\n# edited\n")
    with pytest.raises(UserNetError, match=f"SHA-256 {config.model_sha256[:12]}.*restore it"):
        train(config, tiny_mnist)
    (tmp_path / "nets" / "net.py").unlink()
    with pytest.raises(UserNetError, match="cannot be read here.*same path on every worker"):
        check_user_source(config.model_source, config.model_sha256)
