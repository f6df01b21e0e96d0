"""`dialer models train|evaluate` (propensity model) and `dialer simulate strategy`: parse, call, print."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from dialer.cli.options import db_option, db_path, json_option, store_exists
from dialer.strategy.data import DataError

DEFAULT_MODEL_DIR = Path("models/propensity")


def _fmt(x: Any, digits: int = 4) -> str:
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _calibration_lines(table: list[dict[str, float]]) -> list[str]:
    lines = [f"  {'bin':>3} {'n':>6} {'p range':>15} {'predicted':>9} {'observed':>8}"]
    for i, r in enumerate(table, 1):
        lines.append(f"  {i:>3} {r['n']:>6} {r['p_min']:>7.3f}–{r['p_max']:<7.3f} {r['predicted']:>9.3f} "
                     f"{r['observed']:>8.3f}")
    return lines


@click.command()
@click.option("--data", "data_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="CSV with a header row: feature columns and the target column.")
@click.option("--target", default=None, help="Name of the binary target column (with --data).")
@click.option("--positive", default=None, help="Target value of the positive class (guessed for 1/yes/true/good).")
@click.option("--from-store", is_flag=True, help="Train on the store's own outcomes instead of a CSV.")
@db_option
@click.option("--as-of", default=None, help="ISO date: features as of this day, payments after it are the label "
              "(default: today minus the horizon), with --from-store.")
@click.option("--horizon-days", default=30, show_default=True, type=click.IntRange(1, 365),
              help="Payment window after --as-of, with --from-store.")
@click.option("--campaign", default=None, help="Only this campaign's debtors, with --from-store.")
@click.option("--out", "out_dir", default=DEFAULT_MODEL_DIR, show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Directory to save the model in.")
@click.option("--seed", default=0, show_default=True, type=int, help="Split and model seed.")
@click.option("--rule-feature", default=None, help="Feature of the one-feature baseline (default: the most "
              "predictive on the training split; days_past_due with --from-store).")
@click.option("--drop", multiple=True, help="Column to ignore (an identifier, say); repeatable.")
@json_option("Print one JSON object.")
def train(data_path: Path | None, target: str | None, positive: str | None, from_store: bool, db: Path | None,
          as_of: str | None, horizon_days: int, campaign: str | None, out_dir: Path, seed: int,
          rule_feature: str | None, drop: tuple[str, ...], as_json: bool) -> None:
    """Train the repayment-propensity model: select a family on a validation split, compare with logistic
    regression and a one-feature rule on a held-out test split, save the model and its metadata."""
    from dialer.strategy.data import load_dataset, read_csv_text
    from dialer.strategy.model import train_model

    if from_store == (data_path is not None):
        raise click.UsageError("give either --data FILE.csv --target COLUMN, or --from-store")
    if data_path is not None and not target:
        raise click.UsageError("--data needs --target COLUMN")
    try:
        if from_store:
            data = _store_dataset(db, as_of, horizon_days, campaign)
            rule_feature = rule_feature or "days_past_due"
        else:
            data = load_dataset(read_csv_text(data_path), target, str(data_path), positive, drop=drop)
        report = train_model(data, seed=seed, rule_feature=rule_feature)
    except DataError as exc:
        raise click.ClickException(str(exc)) from None
    data_path = data_path or Path(data.source)
    saved = report.model.save(out_dir)
    if as_json:
        click.echo(json.dumps({"model_dir": str(saved), "target": data.target, "positive": data.positive,
                               "rows": int(len(data.y)), **report.summary()}))
        return
    click.echo(f"data: {data_path} ({len(data.y)} rows, {len(data.kinds)} features, "
               f"positive class {data.target}={data.positive!r}, rate {data.y.mean():.3f})")
    click.echo("model selection on the validation split (lowest Brier; a simpler family within one SE wins):")
    for fam, m in report.validation.items():
        mark = " <- chosen" if fam == report.chosen else ""
        click.echo(f"  {fam:<10} AUC {m['auc']:.4f}  Brier {m['brier']:.4f}{mark}")
    click.echo("held-out test split:")
    click.echo(f"  {'':<26} {'AUC':>7} {'Brier':>7} {'ECE':>7}")
    names = {"model": f"model ({report.chosen})", "logistic": "logistic regression",
             "rule": f"one-feature rule ({report.rule.feature})"}
    for key, label in names.items():
        m = report.test[key]
        click.echo(f"  {label[:26]:<26} {m['auc']:>7.4f} {m['brier']:>7.4f} {m['ece']:>7.4f}")
    for base, d in report.versus.items():
        click.echo(f"  model − {base}: AUC {d['auc_diff']:+.4f} [{d['auc_diff_lo']:+.4f}, {d['auc_diff_hi']:+.4f}]"
                   f"  Brier {d['brier_diff']:+.4f} [{d['brier_diff_lo']:+.4f}, {d['brier_diff_hi']:+.4f}]")
    click.echo("calibration of the model on the test split:")
    for line in _calibration_lines(report.test["model"]["calibration"]):
        click.echo(line)
    click.echo(f"saved: {saved}/model.joblib, {saved}/model.json")


def _store_dataset(db: Path | None, as_of: str | None, horizon_days: int, campaign: str | None):
    from datetime import date, datetime, time, timedelta, timezone

    from dialer.store import Store
    from dialer.strategy.rescore import store_training_data

    path = db_path(db)
    if not store_exists(path):
        raise DataError(f"{path}: no store database here (use --db)")
    try:
        day = date.fromisoformat(as_of) if as_of else date.today() - timedelta(days=horizon_days)
    except ValueError:
        raise DataError(f"--as-of: not an ISO date: {as_of!r}") from None
    store = Store(path)
    try:
        return store_training_data(store, datetime.combine(day, time(23, 59, 59), timezone.utc), horizon_days,
                                   campaign)
    finally:
        store.close()


@click.command()
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Labelled CSV with the model's feature columns.")
@click.option("--target", default=None, help="Target column (default: the one the model was trained on).")
@click.option("--model", "model_dir", default=DEFAULT_MODEL_DIR, show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Directory of a trained model.")
@json_option("Print one JSON object.")
def evaluate(data_path: Path, target: str | None, model_dir: Path, as_json: bool) -> None:
    """Evaluate a saved propensity model on labelled data: ROC AUC, Brier score, calibration table."""
    from dialer.strategy.data import read_csv_text
    from dialer.strategy.model import PropensityModel, evaluate_model

    try:
        model = PropensityModel.load(model_dir)
        result = evaluate_model(model, read_csv_text(data_path), target, str(data_path))
    except DataError as exc:
        raise click.ClickException(str(exc)) from None
    result = {"model_dir": str(model_dir), "family": model.meta["family"], "trained_at": model.meta["trained_at"],
              "data_hash": model.meta["data_hash"], **result}
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"model: {model_dir} ({model.meta['family']}, trained {model.meta['trained_at']})")
    click.echo(f"data: {data_path} ({result['n']} rows, positive rate {result['positive_rate']:.3f})")
    click.echo(f"ROC AUC {result['auc']:.4f}   Brier {result['brier']:.4f}   ECE {result['ece']:.4f}")
    if result["ignored_columns"]:
        click.echo(f"ignored columns: {', '.join(result['ignored_columns'])}")
    click.echo("calibration:")
    for line in _calibration_lines(result["calibration"]):
        click.echo(line)


@click.command("strategy")
@click.option("--seeds", default=3, show_default=True, type=click.IntRange(1, 100), help="Number of seeds.")
@click.option("--debtors", default=1500, show_default=True, type=click.IntRange(50, 200000),
              help="Debtors in each synthetic portfolio.")
@click.option("--calls", default=1500, show_default=True, type=click.IntRange(10, 1000000),
              help="Call budget per ordering and seed.")
@click.option("--export-training", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the synthetic training set (store features + 'paid') to this CSV, for "
                   "`dialer models train --target paid --rule-feature days_past_due`.")
@json_option("Print one JSON object.")
def simulate_strategy(seeds: int, debtors: int, calls: int, export_training: Path | None, as_json: bool) -> None:
    """Recovered amount per 100 calls: propensity ranking vs days-past-due order vs random, same seeds and budget."""
    from dialer.strategy.simulate import SimConfig, export_training_csv, run_many

    if export_training is not None:
        export_training_csv(SimConfig(), 0, export_training)
    result = run_many(SimConfig(debtors=debtors, calls=calls), seeds=range(seeds))
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"synthetic portfolios: {debtors} debtors, {calls} calls per ordering, seeds {list(range(seeds))}")
    click.echo(f"  {'ordering':<12} {'recovered/100 calls':>20} {'contacts/100':>13} {'payers':>7}  vs dpd")
    for name, r in result["orderings"].items():
        click.echo(f"  {name:<12} {r['recovered_per_100_calls']:>20.1f} {r['contacts_per_100_calls']:>13.1f} "
                   f"{r['payers']:>7.1f}  {r['ratio_vs_dpd']:.2f}x")
    click.echo(f"propensity model: {result['model']['family']}, test AUC {result['model']['auc']:.3f} "
               f"(days-past-due rule {result['model']['rule_auc']:.3f})")
