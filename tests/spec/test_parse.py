"""Reading a spec file: what is not a spec is refused with what it is."""

from tests.conftest import invoke, refused


def test_a_spec_path_that_is_a_folder_says_so(tmp_path):
    (tmp_path / "a.toml").write_text("x")
    refused(invoke("study", str(tmp_path)), "is a folder, not a spec file", "a.toml")


def test_a_spec_of_random_bytes_is_refused(tmp_path):
    path = tmp_path / "noise.toml"
    path.write_bytes(bytes(range(256)) * 4)
    refused(invoke("study", str(path)), "not a text file")


def test_a_spec_saved_with_a_byte_order_mark_reads_as_without(tmp_path):
    from mnistlab.spec.parse import load_spec

    text = 'name = "bom"\nmodels = ["cnn2"]\nseeds = 2\n'
    (tmp_path / "plain.toml").write_text(text, encoding="utf-8")
    (tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    with_mark = load_spec(tmp_path / "bom.toml")
    assert with_mark.name == "bom"
    plain = load_spec(tmp_path / "plain.toml")
    assert [c.config_hash() for c in with_mark.run_configs()] == [
        c.config_hash() for c in plain.run_configs()
    ]
