"""The smoke study on real MNIST, then its report, through the command line."""

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from mnistlab.cli.app import app
from tests.conftest import SECTIONS

pytestmark = pytest.mark.slow


def test_smoke_study_then_report_writes_html_and_pdf_with_every_section(
    tmp_path, real_data_dir, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNISTLAB_DATA", str(real_data_dir))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    runner = CliRunner()
    spec = str(__import__("pathlib").Path(__file__).parents[2] / "experiments" / "smoke.toml")
    assert runner.invoke(app, ["study", spec], catch_exceptions=False).exit_code == 0
    result = runner.invoke(app, ["report", "smoke"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    html = (tmp_path / "reports" / "smoke" / "index.html").read_text()
    for section in SECTIONS:
        assert section in html
    assert "Ten random test digits" in html and "Misclassified digits of cnn3" in html
    # Six study figures, the power curves and the two digit figures.
    assert (
        html.count('<img src="data:image/png;base64,') == 10 and 'id="power"' in html
    )  # 9 figures and the forest plot
    pdf = PdfReader(tmp_path / "reports" / "smoke" / "report.pdf")
    assert len(pdf.pages) >= 4
    assert "inconclusive" in " ".join(page.extract_text() for page in pdf.pages)
