"""Reading a spec file: what is not a spec is refused with what it is."""

from tests.conftest import invoke, refused


def test_a_spec_path_that_is_a_folder_says_so(tmp_path):
    (tmp_path / "a.toml").write_text("x")
    refused(invoke("study", str(tmp_path)), "is a folder, not a spec file", "a.toml")


def test_a_spec_of_random_bytes_is_refused(tmp_path):
    path = tmp_path / "noise.toml"
    path.write_bytes(bytes(range(256)) * 4)
    refused(invoke("study", str(path)), "not a text file")
