"""`astro-scim drift`: audit each IdP against its Astro organization; `--fix` plans remedies, `--yes` acts.

Exit 0 when there is no drift (left), 1 when there is, 2 for a refused plan (UnsafePlan), 3 for remote errors.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path

from connector import output
from connector.audit.reconcile import AuditResult
from connector.audit.report import SUMMARY_BYTES, render, to_markdown
from connector.audit.run import DriftRun, FixOptions, drift, print_report
from connector.config.arg import load_config_arg
from connector.errors import EXIT_FINDINGS, EXIT_OK, EXIT_REMOTE, ConnectorError, UsageError
from connector.plan import trail
from connector.support import github


@trail.recorded("drift --fix")
def run(args: argparse.Namespace) -> int:
    done = DriftRun()
    try:
        return _run(args, done)
    except ConnectorError as exc:
        # What was audited before the error is reported with it (another IdP's findings, remedies already carried
        # out); the exit code stays the error's.
        _record(done)
        if args.format == "json":  # the document still comes, saying what stopped the audit (stdout or the file)
            if not args.output:
                output.raw(_stopped_document(done, exc))
            elif not isinstance(exc, _CannotWrite):
                _write(args.output, _stopped_document(done, exc) + "\n", quiet_failure=True)
        elif args.output and not isinstance(exc, _CannotWrite):
            _drop_stale(args.output)
        elif args.format == "github" and not args.output:
            # The run page shows annotations and the job summary, not the log: say there why no report came.
            why = f"{exc}" + (f" ({exc.hint})" if exc.hint else "")
            output.raw(github.annotation("error", why, title="astro-scim drift stopped: no report"))
            github.append_summary(f"# Astro SCIM drift report\n\n**Stopped, no report:** {why} "
                                  f"(exit {exc.exit_code})")
        elif args.format == "text" and not args.output and (unseen := done.unseen()):
            # Beside the error on stderr. Other formats (a file, markdown, JUnit, a job summary) are documents
            # read on their own: one holding only the IdPs done could read as "no drift", so none is written.
            _emit(unseen, args.format, None)
        raise
    except BaseException as exc:
        _record(done)  # interrupted (Ctrl-C) or a bug (exit 70): the remedies carried out still reach the trail
        if isinstance(exc, KeyboardInterrupt):
            # the document still comes (as every --format json command's does), never a clean one; with -o, in
            # the file, and another format's earlier report goes (a CI step uploading it after a cancel showed
            # the last clean audit)
            if args.format == "json" and not args.output:
                output.raw(_stopped_document(done, exc))
            elif args.format == "json":
                _write(args.output, _stopped_document(done, exc) + "\n", quiet_failure=True)
            elif args.output:
                _drop_stale(args.output)
        raise


def _stopped_document(done: DriftRun, exc: BaseException) -> str:
    """The JSON report of what was audited before `exc` stopped the run: never clean, its `error` saying why."""
    from connector.audit.report import to_json

    doc = {**json.loads(to_json(done.results)), "clean": False, "error": output.error_fields(exc)}
    return json.dumps(doc, indent=2)


def _run(args: argparse.Namespace, done: DriftRun) -> int:
    if not args.fix and (args.yes or args.delete_orphans):
        raise UsageError("--yes and --delete-orphans only apply with --fix", hint="astro-scim drift --fix --yes")
    if args.output and not Path(args.output).resolve().parent.is_dir():
        # checked before the audit, which can take a while, rather than failing to write its result
        raise _CannotWrite(f"cannot write the report to {args.output}: its folder does not exist",
                           hint=f"create it first (mkdir -p {Path(args.output).parent})")
    if args.output and Path(args.output).is_dir():
        raise _CannotWrite(f"cannot write the report to {args.output}: it is a folder",
                           hint=f"name a file in it, e.g. -o {Path(args.output) / ('drift.' + args.format)}")
    cfg = load_config_arg(args.config)
    if args.fix:  # a read-only audit changes nothing: only --fix leaves a line in the audit trail
        trail.bind(cfg)
    options = FixOptions(fix=args.fix, yes=args.yes, delete_orphans=args.delete_orphans, force=args.force)
    drift(cfg, args.idp, options, fmt=args.format, to_stdout=not args.output, progress=output.progress(), run=done)
    _record(done)
    unseen = done.unseen()
    if unseen or not done.results:
        try:
            _emit(unseen, args.format, args.output)  # only text on stdout is ever shown early: others get everything
        except _CannotWrite as exc:
            if not _acted(done, exc):
                raise  # nothing was done: the write failure is the news (exit 2)
    # A remedy that failed is never a clean run, even when no finding is left to show for it.
    failed = any(not remedy.get("ok") for r in done.results for remedy in r.remedies)
    if all(r.clean for r in done.results) and not failed:
        return EXIT_OK
    if failed or any(r.findings for r in done.results):
        return EXIT_FINDINGS
    return EXIT_REMOTE  # no finding, but a read failed: what it would have judged is not verified


def _acted(done: DriftRun, exc: _CannotWrite) -> bool:
    """The report could not be written, but --fix --yes had already acted: its repairs stand whatever becomes of
    the report, so exiting 2 (a usage error, as if nothing had happened) would hide them. Say what was done and
    that the report is missing (path and OS error); the exit code stays the verdict's. False when nothing was
    done."""
    acted = [(r.idp, remedy) for r in done.results for remedy in r.remedies]
    if not acted:
        return False
    output.error(str(exc), exc.hint or "the repairs below were made all the same; run drift again for the report")
    ok = sum(1 for _, remedy in acted if remedy.get("ok"))
    output.warn(f"the fix carried out {len(acted)} remedy action(s) before that ({ok} done, {len(acted) - ok} "
                "failed); they stand:")
    for idp, remedy in acted:
        output.warn(f"  {idp}: {'done' if remedy.get('ok') else 'FAILED'} {remedy.get('resource')} "
                    f"{remedy.get('key')}: {remedy.get('detail') or remedy.get('message')}")
    return True


def _record(done: DriftRun) -> None:
    """Each remedy carried out, in the audit trail (each result's once, whether the run ends well or not)."""
    for result in done.results:
        if any(result is seen for seen in done.recorded):
            continue
        done.recorded.append(result)
        for remedy in result.remedies:
            trail.record(result.idp, {**remedy, "outcome": "done" if remedy.get("ok") else "failed"})


class _CannotWrite(UsageError):
    """The report file cannot be written (exit 2, as any UsageError): there is then nothing to put in its place."""


def _write(path: str, text: str, *, quiet_failure: bool = False) -> None:
    from connector.support.redact import redact

    target = Path(path)
    tmp = target.with_name(f".{target.name}.writing")
    try:
        # Whole or not at all: a report cut short (a second Ctrl-C while it was written) is no report.
        tmp.write_text(redact(text), encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if quiet_failure:  # already on the way out with another error: that one is the news
            output.warn(f"cannot write the report to {path}: {exc.strerror or exc}")
            return
        raise _CannotWrite(f"cannot write the report to {path}: {exc.strerror or exc}") from exc


def _drop_stale(path: str) -> None:
    """An error stopped the run before its report: a report left at `path` by an earlier run would be read as this
    run's (a CI step uploading drift.xml after a failure would show the last clean audit), so it goes."""
    target = Path(path)
    if target.is_file():
        try:
            target.unlink()
        except OSError as exc:
            output.warn(f"could not remove the earlier report {path} ({exc.strerror or exc}): it is not this run's")
            return
        output.warn(f"removed the earlier report {path}: this run stopped before writing its own")


def _emit(results: list[AuditResult], fmt: str, path: str | None) -> None:
    if fmt == "github":  # in GitHub Actions the markdown report becomes the job summary too
        # within GitHub's cap, with room for the masking and what else the step appends
        github.append_summary(to_markdown(results, max_bytes=SUMMARY_BYTES - 16 * 1024))

    if path:
        _write(path, render(results, fmt))
        found = sum(len(r.findings) for r in results)
        verdict = (f"{found} finding(s)" if found else "no drift" if all(r.clean for r in results)
                   else "no finding left, but not clean")  # as the reports themselves say it
        output.say(f"wrote the {fmt} report to {path}: {verdict}")
        return
    print_report(results, fmt)
