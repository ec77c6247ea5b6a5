"""`gupshup-async report J`: the delivery funnel of a campaign journal, failures by code.

Each recipient counts once, at its furthest status: a read message counts in accepted, sent,
delivered and read; a failed one (after Gupshup accepted it) in accepted and failed only.
Statuses that arrived before their send's answer was journaled are applied first.

`J` is a campaign's SQLite file, or a Postgres database (`postgresql://...`, or
$GUPSHUP_DATABASE_URL when `J` is left out): there, every campaign's (or `--campaign`'s) state
counts, each with its funnel under `delivery`, and the funnel of them all under `delivery`.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..journal import CampaignMismatchError
from ..journal.delivery import DeliveryJournal

#: One line on what a failure code means and what to do (Meta's and Gupshup's codes).
CODE_MEANINGS = {
    131047: "more than 24 h since the user last wrote: send an approved template",
    131026: "undeliverable: not on WhatsApp, old app version, or terms not accepted",
    131049: "not delivered by Meta to keep engagement healthy: try later, fewer marketing sends",
    131051: "message type not supported",
    131052: "media could not be downloaded from the link",
    131053: "media could not be uploaded: check type and size",
    131050: "the user stopped marketing messages",
    131000: "something went wrong at Meta: retry later",
    131008: "a required parameter is missing",
    131009: "a parameter value is not valid",
    131056: "too many messages to this user in a short time",
    130472: "the user's number is part of an experiment: not delivered",
    1002: "number is not on WhatsApp",
    1003: "Gupshup wallet balance too low",
    1012: "the user opted out",
}

_ACCEPTED_STATES = ("sent",)
_AMBIGUOUS_STATES = ("ambiguous", "sending")
_SENT_OR_BETTER = ("sent", "delivered", "read")


def funnel(journal: DeliveryJournal) -> dict[str, Any]:
    """The report as one JSON-ready object (keys documented in the README)."""
    journal.apply_unmatched()
    report = funnel_of(journal.delivery_counts()["groups"])
    report["unmatched_events"] = journal.unapplied_events()
    return report


def funnel_of(rows: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """The funnel of (state, delivery, failure code, count) groups, whatever the journal."""
    total = Counter[str]()
    by_code = Counter[str]()
    not_accepted = Counter[str]()
    for state, delivery, code, count in rows:
        total["recipients"] += count
        if delivery is None and state not in _ACCEPTED_STATES:
            if state in _AMBIGUOUS_STATES:
                total["ambiguous_unsettled"] += count
            else:
                not_accepted[state] += count
            continue
        total["accepted"] += count
        if state in _AMBIGUOUS_STATES:
            total["ambiguous_settled"] += count
        if delivery is None or delivery == "enqueued":
            total["no_status"] += count
        if delivery in _SENT_OR_BETTER:
            total["sent"] += count
        if delivery in ("delivered", "read"):
            total["delivered"] += count
        if delivery == "read":
            total["read"] += count
        if delivery == "failed":
            total["failed"] += count
            by_code["unknown" if code is None else str(code)] += count
    keys = ("recipients", "accepted", "sent", "delivered", "read", "failed")
    report: dict[str, Any] = {key: total[key] for key in keys}
    report["failed_by_code"] = dict(sorted(by_code.items()))
    report["ambiguous_settled"] = total["ambiguous_settled"]
    report["ambiguous_unsettled"] = total["ambiguous_unsettled"]
    report["no_status"] = total["no_status"]
    report["not_accepted"] = dict(sorted(not_accepted.items()))
    return report


def render(report: dict[str, Any]) -> str:
    """The report as text for a terminal."""
    accepted = report["accepted"]

    def share(n: int) -> str:
        return f"{100 * n / accepted:5.1f}%" if accepted else "     -"

    lines = [
        f"Recipients: {report['recipients']}",
        f"Accepted by Gupshup: {accepted}",
        f"  sent       {report['sent']:>8}  {share(report['sent'])}",
        f"  delivered  {report['delivered']:>8}  {share(report['delivered'])}",
        f"  read       {report['read']:>8}  {share(report['read'])}",
        f"  failed     {report['failed']:>8}  {share(report['failed'])}",
    ]
    if report["no_status"]:
        lines.append(f"  no status yet (or only enqueued): {report['no_status']}")
    if report["failed_by_code"]:
        lines.append("Failures by code:")
        for code, count in sorted(report["failed_by_code"].items(), key=lambda kv: -kv[1]):
            meaning = CODE_MEANINGS.get(int(code)) if code.isdigit() else None
            lines.append(f"  {code:>7} {count:>8}  {meaning or 'see Meta error codes'}")
    lines.append(
        f"Ambiguous sends: {report['ambiguous_settled']} settled by webhooks, "
        f"{report['ambiguous_unsettled']} unsettled"
    )
    if report["not_accepted"]:
        parts = ", ".join(f"{state} {n}" for state, n in report["not_accepted"].items())
        lines.append(f"Not accepted: {parts}")
    if report.get("unmatched_events"):
        lines.append(f"Status events matching no recipient (yet): {report['unmatched_events']}")
    return "\n".join(lines)


def write_failures(journal: DeliveryJournal, path: Path) -> int:
    """One CSV row per recipient that did not get the message, or may not have."""
    return write_failure_rows(path, journal.delivery_failures())


def write_failure_rows(
    path: Path, rows: Iterable[Sequence[Any]], *, first: tuple[str, ...] = ()
) -> int:
    """Write `rows` (`first` columns, then recipient, state, message_id, delivery, failure
    code and title, error) as CSV with each code's meaning; returns how many."""
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*first, "recipient", "state", "message_id", "delivery", "failure_code",
                         "failure_title", "meaning", "error"])  # fmt: skip
        for row in rows:
            lead, (recipient, state, message_id, delivery, code, title, error) = (
                row[: len(first)],
                row[len(first) :],
            )
            meaning = CODE_MEANINGS.get(code, "") if code is not None else ""
            writer.writerow([*lead, recipient, state, message_id, delivery, code, title, meaning,
                             error])  # fmt: skip
            count += 1
    return count


def _existing_journal(path: Path) -> DeliveryJournal:
    """The journal file at `path`; `InputError` when there is none to read (nothing made),
    `CampaignMismatchError` when it is some other file (nothing written)."""
    from ._inputs import InputError

    if path.is_dir():
        raise InputError(f"journal {path} is a directory, not a journal file")
    if not path.exists():
        raise InputError(f"journal {path} does not exist")
    if not path.is_file():
        raise InputError(f"journal {path} is not a regular file (a pipe or a device)")
    try:
        return DeliveryJournal.existing(path)
    except OSError as exc:
        raise InputError(f"cannot read journal {path}: {exc.strerror}") from None


def add_report_parser(commands: Any) -> None:
    """Add `report` to the console script's subcommands."""
    from ._worker import DATABASE_URL_ENV

    report = commands.add_parser(
        "report",
        help="the delivery funnel of a campaign journal (or a Postgres journal's counts)",
        description="The delivery funnel of a campaign's SQLite journal, or the counts of the "
        f"campaigns in Postgres. Without JOURNAL the Postgres URL is read from "
        f"${DATABASE_URL_ENV}: a password on the command line shows in `ps`.",
        epilog="exit status: 0 printed, 2 bad usage (or no such journal file or campaign, or "
        "a file that is not a campaign journal), "
        "4 the Postgres database could not be read.",
    )
    report.add_argument(
        "journal",
        metavar="JOURNAL",
        nargs="?",
        default=None,
        help=f"the campaign's --journal file, or a postgresql:// URL (default: "
        f"${DATABASE_URL_ENV})",
    )
    report.add_argument("--campaign", type=int, default=None, help="Postgres: only this campaign")
    report.add_argument("--json", action="store_true", help="print one JSON object")
    report.add_argument(
        "--failures", type=Path, default=None, metavar="CSV", help="write the failures here"
    )
    report.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Print the report of `args.journal`; exit 2 when it does not exist or is no campaign
    journal (left untouched), 4 when its Postgres database cannot be read."""
    from ._inputs import InputError
    from ._report_postgres import report_postgres
    from ._worker import database_url, is_postgres_url, url_source

    if args.journal is None or is_postgres_url(args.journal):
        try:
            url = database_url(
                args.journal, flag="JOURNAL", wanted="a journal file or a postgresql:// URL"
            )
        except InputError as problem:
            print(f"gupshup-async: error: {problem}", file=sys.stderr)
            return 2
        source = url_source(args.journal, "JOURNAL")
        return report_postgres(url, args.campaign, args.json, args.failures, source=source)
    args.journal = Path(args.journal)
    try:
        journal = _existing_journal(args.journal)  # beside a running campaign or webhooks serve
    except (InputError, CampaignMismatchError) as problem:
        print(f"gupshup-async: error: {problem}", file=sys.stderr)
        return 2
    try:
        report = funnel(journal)
        if args.failures is not None:
            written = write_failures(journal, args.failures)
    finally:
        journal.close()
    if args.json:
        print(json.dumps(report, sort_keys=False))
    else:
        print(render(report))
        if args.failures is not None:
            print(f"{written} failure rows written to {args.failures}")
    return 0
