"""`dialer simulate pacing`: the seeded pacing simulator from the command line."""
from __future__ import annotations

import json
from dataclasses import asdict

import click

from dialer.cli.options import json_option
from dialer.pacing.simulate import compare, scenario

# --------------------------------------------------------------------------- CLI


@click.command("pacing")
@click.option("--agents", type=click.IntRange(1, 500), default=20, show_default=True, help="Collectors on the simulated floor.")
@click.option("--hours", type=click.FloatRange(0.1, 24), default=8.0, show_default=True, help="Simulated shift length, hours.")
@click.option("--seeds", type=click.IntRange(1, 100), default=1, show_default=True, help="Number of seeded runs (seeds 1..N).")
@click.option("--scenario", "scenario_name", default="standard", show_default=True,
              help="standard | bimodal | drift | breaks")
@click.option("--answer-rate", type=click.FloatRange(0.01, 0.95), default=None,
              help="probability a dial reaches a person (default: the scenario's)")
@click.option("--no-tune", is_flag=True, help="skip the hindsight-tuned baselines (faster)")
@json_option("one JSON object")
def simulate_pacing(agents: int, hours: float, seeds: int, scenario_name: str, answer_rate: float | None,
                    no_tune: bool, as_json: bool) -> None:
    """Replay the same seeded calls against every pacer; print occupancy and abandonment."""
    over: dict = {"agents": agents, "hours": hours}
    if answer_rate is not None:
        over["p_human"] = answer_rate
    sc = scenario(scenario_name, **over)
    from common.progress import track

    runs = [compare(sc, seed, tuned=not no_tune) for seed in track(range(1, seeds + 1), "simulating seeds", seeds)]
    if as_json:
        click.echo(json.dumps({"scenario": asdict(sc), "runs": runs}))
        return
    click.echo(f"scenario {sc.name}: {agents} collectors, {hours:g} h, p(person)={sc.p_human}, seeds 1..{seeds}")
    click.echo(f"{'pacer':<18}{'occupancy':>10}{'abandon':>9}{'worst 1h':>10}{'placed':>8}{'conn/agent-h':>14}")
    for key in runs[0]:
        rows = [r[key] for r in runs]
        mean = lambda f: sum(x[f] for x in rows) / len(rows)  # noqa: E731
        click.echo(f"{rows[0]['pacer']:<18}{mean('occupancy'):>10.1%}{mean('abandon_rate'):>9.2%}"
                   f"{max(x['worst_hour_abandon'] for x in rows):>10.2%}{mean('placed'):>8.0f}"
                   f"{mean('connects_per_agent_hour'):>14.1f}")
