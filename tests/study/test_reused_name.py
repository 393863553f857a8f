"""A study name reused by a different spec: warned once, before training, with the fix."""

from tests.conftest import flat, invoke

SPEC = """
name = "shared"
seeds = {seeds}
[settings]
train_size = 100
batch_size = 20
eval_every = 2
eval_subset = 50
device = "cpu"
threads = 1
[arms.{arm}]
model = "cnn2"
lr = {lr}
"""


def test_a_spec_reusing_a_study_name_is_warned_of_but_trained(
    tmp_path, tiny_mnist_dir, store_uri, unverified
):
    first, second = tmp_path / "first.toml", tmp_path / "second.toml"
    first.write_text(SPEC.format(seeds=1, arm="base", lr=0.01))
    second.write_text(SPEC.format(seeds=1, arm="other", lr=0.003))
    common = ("--data-dir", str(tiny_mnist_dir), "--tracking-uri", store_uri)

    ran = invoke("study", str(first), *common)
    assert ran.exit_code == 0 and "Warning" not in ran.output, ran.output
    ran = invoke("study", str(second), *common)
    assert ran.exit_code == 0, ran.output
    assert flat(ran.output).startswith(
        f"Warning: Study 'shared' already holds runs of another spec (from {first}): its 1 "
        "run(s) stay in the store, but the analysis will use only this spec's runs. Rename "
        f'the study (name = "..." in {second}) to keep both.'
    ), ran.output
    assert "other-s0" in ran.output  # trained all the same
    # Rerunning the same spec, or adding seeds to it, leaves out nothing new: no warning.
    assert "Warning" not in invoke("study", str(second), *common).output
    second.write_text(SPEC.format(seeds=2, arm="other", lr=0.003))
    grown = invoke("study", str(second), *common)
    assert grown.exit_code == 0 and "Warning" not in grown.output, grown.output
