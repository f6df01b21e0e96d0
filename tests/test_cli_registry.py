"""The `dialer` command tree: every listed command runs (`--help`), no ghost commands, and a command
whose module is missing or broken fails loudly instead of vanishing from the help."""
from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from dialer.cli import LazyGroup, main


def _walk(group: click.Group, path: tuple[str, ...] = ()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, f"`dialer {' '.join(path + (name,))}` is listed but does not exist"
        yield path + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _walk(cmd, path + (name,))


def test_every_listed_command_runs():
    runner = CliRunner()
    commands = list(_walk(main))
    assert len(commands) > 30
    for path, _ in commands:
        res = runner.invoke(main, [*path, "--help"])
        assert res.exit_code == 0, (path, res.output, res.exception)


def test_agent_help_lists_only_commands_that_exist():
    res = CliRunner().invoke(main, ["agent", "--help"])
    assert res.exit_code == 0, res.output
    listed = {line.split()[0] for line in res.output.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == {"accept", "dispo", "login", "logout", "pause", "ready", "skip", "watch", "wrapup"}


def test_wrapup_command_is_built():
    """`dialer agent wrapup` was once named but not built; now it is a real command."""
    res = CliRunner().invoke(main, ["agent", "wrapup", "--help"])
    assert res.exit_code == 0 and "--seconds" in res.output


def test_a_missing_command_module_raises_instead_of_vanishing():
    group = LazyGroup(name="g", lazy={"ghost": "dialer.cli.no_such_module:ghost"})
    with pytest.raises(ModuleNotFoundError):
        group.get_command(click.Context(group), "ghost")


def test_a_missing_command_attribute_raises():
    group = LazyGroup(name="g", lazy={"ghost": "dialer.cli.agent:no_such_command"})
    with pytest.raises(AttributeError):
        group.get_command(click.Context(group), "ghost")


def test_a_broken_command_import_raises(tmp_path, monkeypatch):
    (tmp_path / "broken_cmd_mod.py").write_text("import no_such_dependency_of_ours\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    group = LazyGroup(name="g", lazy={"broken": "broken_cmd_mod:cmd"})
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_of_ours"):
        group.get_command(click.Context(group), "broken")
