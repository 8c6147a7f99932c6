"""The demo and every example run and print what they promise."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_demo_reaches_97_percent():
    from fastbp.cli import demo
    assert demo(epochs=20, seed=0) >= 0.97


def test_demo_command_line():
    out = run("-m", "fastbp", "demo", "--epochs", "3")
    assert "Epoch 3/3" in out and "test accuracy" in out and "NumPy reference" in out


@pytest.mark.parametrize("script, expected", [
    ("xor.py", "accuracy 1.00"),
    ("digits.py", "test accuracy 0.9"),
    ("regression.py", "test R^2 0."),
    ("custom_loop.py", "epoch 10: loss 0.0"),
])
def test_example(script, expected):
    assert expected in run(str(ROOT / "examples" / script))


def test_readme_examples_run(tmp_path, monkeypatch):
    import re
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    for i, code in enumerate(blocks):
        if 'if __name__ == "__main__":' in code:  # a script (a cluster's worker processes)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            exec(compile(code, f"README.md block {i}", "exec"), {})
    assert (tmp_path / "digits.npz").exists()


def test_readme_scaling_out_example_runs_as_a_script(tmp_path):
    """The README's cluster example, run as the script it is (its ``__main__`` guard: the
    local cluster's worker processes import the main module): it starts two workers, fits by
    distributed L-BFGS and prints a held-out accuracy."""
    import re
    pytest.importorskip("distributed")
    text = (ROOT / "README.md").read_text()
    scripts = [code for code in re.findall(r"```python\n(.*?)```", text, re.S)
               if 'if __name__ == "__main__":' in code]
    assert len(scripts) == 1
    path = tmp_path / "scaling_out.py"
    path.write_text(scripts[0])
    result = subprocess.run([sys.executable, "-W", "ignore", str(path)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(result.stdout.strip().splitlines()[-1]) > 0.9


def test_early_stopping_example_saves_its_curves(tmp_path):
    png = tmp_path / "curves.png"
    out = run(str(ROOT / "examples" / "early_stopping.py"), str(png))
    assert "best epoch" in out and "test accuracy 0.9" in out
    pytest.importorskip("matplotlib")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sklearn_dropin_example():
    out = run(str(ROOT / "examples" / "sklearn_dropin.py"))
    assert out.count("test accuracy 0.9") == 2
