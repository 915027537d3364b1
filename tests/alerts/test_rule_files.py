"""A bad rules file stops the start with one line: the file, the rule and what is wrong.
``ALERT_RULES_FILE`` picks the file; empty means the shipped defaults, which load."""
from __future__ import annotations

from pathlib import Path

import pytest

from alerts.rules import DEFAULT_RULES_FILE, RuleFileError, load_configured_rules, load_rules
from app.settings import Settings
from app.startup_errors import StartupError, explain

GOOD = '''
[[rule]]
name = "db_gone"
metric = "tokenwatch_db_up"
op = "<"
threshold = 1
for = "20s"
summary = "database gone"
'''


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> RuleFileError:
    path = write(tmp_path, text)
    with pytest.raises(RuleFileError) as caught:
        load_rules(path)
    err = caught.value
    line = str(err)
    assert "\n" not in line and line.startswith(f"{path}: ")
    return err


def test_the_shipped_file_loads() -> None:
    rules = load_rules()
    assert len(rules) >= 20 and rules.path == str(DEFAULT_RULES_FILE)


def test_unknown_metric(tmp_path: Path) -> None:
    err = error_of(tmp_path, GOOD.replace("tokenwatch_db_up", "tokenwatch_db_upp"))
    assert err.rule == "db_gone"
    assert str(err) == f"{tmp_path / 'rules.toml'}: rule 'db_gone': metric: unknown metric 'tokenwatch_db_upp' (see monitoring/metric_names.py)"


def test_bad_duration(tmp_path: Path) -> None:
    err = error_of(tmp_path, GOOD.replace('"20s"', '"forever"'))
    assert err.rule == "db_gone" and "for" in err.problem and "'forever' is not a duration" in err.problem


def test_duplicate_name(tmp_path: Path) -> None:
    err = error_of(tmp_path, GOOD + GOOD)
    assert err.rule == "db_gone" and err.problem == "defined twice"


def test_unknown_depends_on(tmp_path: Path) -> None:
    err = error_of(tmp_path, GOOD.replace('summary', 'depends_on = ["market_down"]\nsummary'))
    assert str(err).endswith("rule 'db_gone': depends_on names an unknown rule 'market_down'")


def test_depends_on_loop(tmp_path: Path) -> None:
    a = GOOD.replace('summary', 'depends_on = ["other"]\nsummary')
    b = GOOD.replace("db_gone", "other").replace('summary', 'depends_on = ["db_gone"]\nsummary')
    err = error_of(tmp_path, a + b)
    assert err.rule == "db_gone" and err.problem == "depends_on makes a loop: db_gone -> other -> db_gone"


def test_toml_syntax_error(tmp_path: Path) -> None:
    err = error_of(tmp_path, GOOD.replace('threshold = 1', 'threshold = '))
    assert err.rule is None and err.problem.startswith("not valid TOML:") and "line" in err.problem


def test_bad_forecast(tmp_path: Path) -> None:
    text = GOOD.replace('op = "<"', 'op = ">"').replace(
        'summary', 'forecast = { history = "1h", horizon = "2h", limit = 5 }\nsummary')
    err = error_of(tmp_path, text)
    assert err.rule == "db_gone" and "op" in err.problem


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError) as caught:
        load_rules(tmp_path / "nope.toml")
    assert "cannot read" in str(caught.value)


def test_alert_rules_file_picks_the_file_and_names_itself_in_the_error(tmp_path: Path) -> None:
    assert load_configured_rules(Settings(_env_file=None)).path == str(DEFAULT_RULES_FILE)
    good = write(tmp_path, GOOD)
    assert load_configured_rules(Settings(_env_file=None, alert_rules_file=str(good))).names == ["db_gone"]
    bad = write(tmp_path, GOOD.replace('"<"', '"=<"'))
    settings = Settings(_env_file=None, alert_rules_file=str(bad))
    with pytest.raises(RuleFileError) as caught:
        load_configured_rules(settings)
    line = str(caught.value)
    assert line.startswith(f"ALERT_RULES_FILE {bad}: rule 'db_gone': op: ")
    # reported like every start-up error: `tokenwatch run` prints exactly this line
    assert isinstance(caught.value, StartupError)
    try:
        raise RuntimeError("service start failed") from caught.value
    except RuntimeError as wrapped:
        assert explain(wrapped, settings) == line
