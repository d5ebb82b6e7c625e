"""--log-format json: each log record one JSON line on stderr (UTC time, level, logger, message), secrets masked
as in text logs; taken before or after the command, like -v and -q."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from connector import cli
from connector.cli import build_parser, main
from connector.support.redact import register


@pytest.mark.parametrize("argv", [["--log-format", "json", "plan"], ["plan", "--log-format", "json"],
                                  ["-v", "plan", "--log-format=json"]])
def test_log_format_is_taken_before_or_after_the_command(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).log_format == "json"
    assert build_parser().parse_args(["plan"]).log_format == "text"


def _records(err: str) -> list[dict[str, object]]:
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    for r in records:
        assert set(r) >= {"time", "level", "logger", "message"}
        when = datetime.fromisoformat(str(r["time"]))
        assert when.utcoffset() == timedelta(0) and str(r["time"]).endswith("Z")
    return records


def test_verbose_http_log_is_json_lines_on_stderr(sandbox_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--log-format", "json", "-v", "plan", "--idp", "okta", "-c", str(sandbox_config),
                 "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["plans"]  # stdout: the plan alone
    log_lines = [line for line in err.splitlines() if line.strip()]
    records = _records(err)
    assert records and len(records) == len(log_lines)  # every stderr line is a record
    assert any("GET" in str(r["message"]) and r["level"] == "INFO" for r in records)
    for name in ("okta.token", "astro-okta.token"):  # the tokens the calls carried
        assert (sandbox_config.parent / name).read_text().strip() not in err


def test_records_are_masked_and_warnings_show_without_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    secret = "s3cr3t-token-value-0123456789"
    register(secret)
    log = logging.getLogger("connector.test")
    with cli._verbose_logging(False, "json"):
        log.info("not shown without -v: %s", secret)
        log.warning("refused token %s", secret)
        try:
            raise ValueError(f"bad {secret}")
        except ValueError:
            log.exception("failed with %s", secret)
    err = capsys.readouterr().err
    assert secret not in err
    records = _records(err)
    assert [(r["level"], r["logger"], r["message"]) for r in records] == [
        ("WARNING", "connector.test", "refused token ****"), ("ERROR", "connector.test", "failed with ****")]
    assert "ValueError: bad ****" in str(records[1]["exception"])
    with cli._verbose_logging(True, "json"):
        log.info("shown with -v: %s", secret)
    [record] = _records(capsys.readouterr().err)
    assert record["message"] == "shown with -v: ****" and record["level"] == "INFO"
