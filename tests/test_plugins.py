"""A third-party package registers a method through the ``leadrank.methods`` entry point."""

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples/leadrank-plugin-example"
BIN = Path(sys.executable).parent


def test_plugin_package_appears_in_list_and_in_a_run(tmp_path, data_dir):
    site = tmp_path / "site"  # a private target: the suite's own venv stays clean for ./run_all.sh
    subprocess.run([BIN / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", site, EXAMPLE], check=True, capture_output=True)
    env = dict(os.environ, PYTHONPATH=str(site))
    listed = subprocess.run([BIN / "leadrank", "list"], env=env, capture_output=True, text=True, check=True).stdout
    assert "example_engagement" in listed
    prof = tmp_path / "p.yaml"
    prof.write_text(f"datasets: {{tiny: {{world: industrial, leads: 3000, seed: 0, table: table2}}}}\n"
                    f"data_dir: {data_dir}\neval: {{bootstrap: 50}}\nseeds: [0]\n")
    subprocess.run([BIN / "leadrank", "run", "--profile", prof, "--methods", "example_engagement,oracle",
                    "--out", tmp_path / "res"], env=env, capture_output=True, check=True)
    table = (tmp_path / "res/table2.md").read_text()
    assert "example_engagement *(not in paper)*" in table
    assert (tmp_path / "res/runs/tiny/example_engagement/seed0.json").is_file()
