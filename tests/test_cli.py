"""The CLI: every command has help with an example; bad input gives one line and exit 1."""
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from sparklio_bi.cli import main


def all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from all_commands(command, prefix + (name,))


@pytest.mark.parametrize("path,command", list(all_commands(main)), ids=lambda p: " ".join(p) if isinstance(p, tuple) else "")
def test_every_command_has_help(path, command):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert command.help and command.help.strip()
    if not isinstance(command, click.Group):
        assert "Example:" in command.help, f"{' '.join(path)} has no example in its help"


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "sparklio_bi.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.stderr
