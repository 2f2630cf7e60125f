"""The `seg_perception` command line: every subcommand loads, and errors are one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from seg_perception.cli import main, SUBCOMMANDS


@pytest.mark.parametrize('name', sorted(SUBCOMMANDS))
def test_every_subcommand_has_help(name, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*name.split(), '--help'])
    assert exit_info.value.code == 0
    assert 'usage: seg_perception ' + name in capsys.readouterr().out


def test_errors_are_one_line_and_non_zero() -> None:
    result = subprocess.run([sys.executable, '-m', 'seg_perception.cli', 'evaluate', '--model',
                             '/nonexistent/model.pt'], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().count('\n') == 0
    assert result.stderr.startswith('seg_perception evaluate: error:')
    assert 'nonexistent' in result.stderr
