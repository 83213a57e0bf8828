"""Typed settings: every profile key and --set is checked before any job runs; profiles extend; variants are YAML."""

import subprocess
import sys
from pathlib import Path

import pytest

import leadrank_api as api
from benchmark import registry, runner, tables
from benchmark.cli import main
from benchmark.contract import contract_profile, tiny_entry
from benchmark.profile import load_profile
from feature_store.errors import ConfigError

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("override, message", [
    ("ctr.epoch=3", r"unknown key 'ctr.epoch' \(did you mean 'epochs'\? known: batch_size, embedding_dim, epochs"),
    ("lightgbm.num_leaves=7.5", r"lightgbm.num_leaves = 7.5: input should be a valid integer"),
    ("ctr.epochs=2.9", r"ctr.epochs = 2.9: input should be a valid integer"),
    ("ctr.epochs=three", r"ctr.epochs = \"three\": input should be a valid integer"),
    ("evl.bootstrap=3", r"unknown profile key 'evl' \(did you mean 'eval'\?"),
    ("eval.bootstrp=3", r"unknown key 'eval.bootstrp' \(did you mean 'bootstrap'\?"),
    ("h_text.minilm.batch=3", r"unknown key 'h_text.minilm.batch' \(did you mean 'batch_size'\?"),
    ("llm.tiny.hiden=32", r"unknown key 'llm.tiny.hiden' \(did you mean 'hidden'\?"),
    ("hpro.tiers=[globl]", r"hpro = .*unknown or no tier\(s\) \['globl'\]"),
    ("datasets.benchmark.leeds=10", r"unknown key 'datasets.benchmark.leeds' \(did you mean 'leads'\?"),
    ("seeds=[0.5]", r"seeds.0 = 0.5: input should be a valid integer"),
])
def test_each_config_mistake_is_one_line_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message) as e:
        load_profile("quick", [override])
    assert "\n" not in str(e.value) and str(e.value).startswith(f"--set {override}: ")


def test_a_mistake_fails_on_the_command_line_before_any_job_runs(tmp_path, capsys):
    assert main(["run", "--set", "ctr.epoch=3", "--out", str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'epochs'" in err
    assert not (tmp_path / "res").exists()


def test_settings_a_method_cannot_run_with_fail_in_the_plan():
    with pytest.raises(ConfigError, match="no pairwise head"):
        runner.plan(load_profile("quick", ["llm.score=pairwise"]), methods=["asllr_ce"])


def test_hpro_honours_llm_score():
    """asllr_hpro used to drop --set llm.score=qa silently (it read hpro.score instead)."""
    profile = load_profile("quick", ["llm.score=qa"])
    method = registry.get("asllr_hpro")(api.MethodContext(
        settings=api.method_settings(registry.get("asllr_hpro"), profile.config)))
    assert method.cfg.score == "qa"


def test_values_keep_their_type_and_floats_written_like_1e_3_are_numbers():
    settings = api.method_settings(registry.get("lightgbm"), load_profile("quick", ["lightgbm.lambda_l2=10"]).config)
    assert settings["lightgbm"].lambda_l2 == 10.0
    llm = api.method_settings(registry.get("asllr_ce"), load_profile("quick", ["llm.lr_lora=1e-3"]).config)["llm"]
    assert llm.lr_lora == 1e-3


def test_extend_merges_sections_and_replaces_values(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text("extend: quick\nctr: {epochs: 1}\nseeds: [3, 4]\n")
    quick, got = load_profile("quick").config, load_profile(str(child)).config
    assert got["ctr"] == {**quick["ctr"], "epochs": 1} and got["seeds"] == [3, 4]
    assert got["llm"] == quick["llm"] and got["datasets"] == quick["datasets"]
    mine = tmp_path / "mine.yaml"  # naming datasets replaces the parent's
    mine.write_text("extend: quick\ndatasets: {crm: {spec: crm/spec.yaml, table: all}}\n")
    assert [d.name for d in load_profile(str(mine)).datasets] == ["crm"]
    grandchild = tmp_path / "grandchild.yaml"
    grandchild.write_text("extend: child.yaml\nctr: {patience: 7}\n")  # a path, relative to the file
    assert load_profile(str(grandchild)).config["ctr"] == {**quick["ctr"], "epochs": 1, "patience": 7}


def test_extend_refuses_a_circle_and_an_unknown_parent(tmp_path):
    (tmp_path / "a.yaml").write_text("extend: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extend: a.yaml\n")
    with pytest.raises(ConfigError, match="circle"):
        load_profile(str(tmp_path / "a.yaml"))
    (tmp_path / "c.yaml").write_text("extend: quik\n")
    with pytest.raises(ConfigError, match=r"unknown profile 'quik' \(did you mean 'quick'\?"):
        load_profile(str(tmp_path / "c.yaml"))


def test_built_in_profiles_hold_only_their_differences():
    for name in ("quick", "standard", "paper", "gpu"):
        text = (Path(registry.__file__).parent / "profiles" / f"{name}.yaml").read_text()
        assert "extend: base" in text and "hpro:" not in text and "logreg:" not in text


VARIANT_PROFILE = """\
extend: quick
variants:
  logreg_strong_l2: {base: logreg, set: {logreg: {C_grid: [0.001]}}, label: "LogReg (C = 0.001)",
                     description: "Logistic regression with a strong L2 penalty"}
"""


def test_a_variant_defined_only_in_yaml_is_listed_runs_and_lands_in_its_row(tmp_path, data_dir):
    prof = tmp_path / "variant.yaml"
    prof.write_text(VARIANT_PROFILE + f"data_dir: {data_dir}\neval: {{bootstrap: 50}}\n")
    listed = subprocess.run([BIN / "leadrank", "list", "--profile", prof], capture_output=True, text=True,
                            check=True).stdout
    assert "logreg_strong_l2" in listed and "strong L2 penalty" in listed
    profile = load_profile(str(prof))
    try:
        cls = registry.get("logreg_strong_l2")
        assert api.method_settings(cls, profile.config)["logreg"].C_grid == (0.001,)
        out = tmp_path / "res"
        [rec] = runner.run(profile, out, methods=["logreg_strong_l2"], datasets=[tiny_entry("table2")],
                           progress=False)
        assert rec.status == "ok" and rec.info["C"] == 0.001
        tables.write_tables(out, with_plots=False)
        assert "| LogReg (C = 0.001) *(not in paper)* |" in (out / "table2.md").read_text()
    finally:  # the variant is by_default: left registered, it would join later tests' plans
        api.unregister("logreg_strong_l2")


@pytest.mark.parametrize("block, message", [
    ("v1: {base: nope, description: x}", r"variants.v1.base: unknown method 'nope'"),
    ("v2: {base: deepctr, options: {modell: DCN}, description: x}",
     r"unknown key 'variants.v2.options.modell' \(did you mean 'model'\?"),
    ("v3: {base: deepctr, options: {model: LR}, description: x}", r"variants.v3.options.model = \"LR\""),
    ("v4: {base: logreg, set: {ctr: {epochs: 1}}, description: x}", r"'logreg' reads no section 'ctr'"),
    ("v5: {base: logreg, set: {logreg: {C_grd: [1.0]}}, description: x}",
     r"unknown key 'variants.v5.set.logreg.C_grd' \(did you mean 'C_grid'\?"),
    ("v6: {base: logreg}", r"missing required key 'variants.v6.description'"),
])
def test_variant_mistakes_are_one_line(tmp_path, block, message):
    prof = tmp_path / "bad.yaml"
    prof.write_text(f"extend: quick\nvariants:\n  {block}\n")
    with pytest.raises(ConfigError, match=message):
        load_profile(str(prof))


def test_table_rows_come_from_registry_metadata():
    t1 = [r.method for r in tables.table_rows("table1", set())]
    assert t1[:12] == ["wdl", "deepfm", "xdeepfm", "dcn", "dcnm", "autoint", "wdl+h_text", "deepfm+h_text",
                       "xdeepfm+h_text", "dcn+h_text", "dcnm+h_text", "autoint+h_text"]
    assert t1[12:] == ["asllr_base", "asllr_ce", "asllr_hpro"]
    t2 = tables.table_rows("table2", {"oracle", "logreg", "someone_elses_plugin"})
    assert [r.method for r in t2] == ["funnel_recency", "funnel_ctr_two_stage", "funnel_ctr_direct", "asllr_ce",
                                      "asllr_hpro", "logreg", "someone_elses_plugin", "oracle"]
    assert t2[3].label == "asLLR (w/o HPRO)" and t2[4].baseline == "asllr_ce"
    assert t2[5].label == "Logistic regression *(not in paper)*" and t2[-1].label == "Oracle (p_true)"


def test_contract_profile_is_quick_with_small_settings(data_dir):
    profile = contract_profile(data_dir)
    assert profile.eval.bootstrap == 50 and profile.config["ctr"]["epochs"] == 1


def test_the_control_world_has_no_curve_and_standard_runs_the_rows_it_names_on_it():
    quick, standard = load_profile("quick"), load_profile("standard")
    assert [d.name for d in quick.datasets if d.curves] == ["benchmark", "industrial"]
    textual = {j.method for j in runner.plan(standard) if j.entry.name == "textual"}
    assert textual == {"oracle", "oracle_table", "logreg", "lightgbm", "deepfm", "deepfm+h_text", "asllr_ce"}
    quick_textual = {j.method for j in runner.plan(quick) if j.entry.name == "textual"}
    assert {"asllr_base", "asllr_ce", "asllr_hpro", "deepfm+h_text"} <= quick_textual
    with pytest.raises(ConfigError, match="unknown method 'deepfn'"):
        runner.plan(load_profile("quick", ["datasets.textual.methods=[deepfn]"]))


@pytest.mark.parametrize("name", ["quick", "standard"])
def test_every_dataset_entry_of_a_shipped_profile_can_group_jobs(name):
    """A run groups its jobs by dataset entry (a dict key), so an entry with its own methods list must hash."""
    from benchmark import runner

    plan = runner.plan(load_profile(name))
    assert dict.fromkeys(job.entry for job in plan)
