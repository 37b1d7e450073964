"""The outbox as people see it: the Bot API options of queued messages, and `siaga outbox`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.services.outbox import OutboxStats
from models.enums import OutboxState, Priority

STATES = (OutboxState.pending, OutboxState.sending, OutboxState.sent, OutboxState.failed, OutboxState.cancelled)


def html_payload() -> dict[str, Any]:
    """Bot API options of a queued text: the dispatcher's Bot has no defaults, so every row says them.

    Texts come from `Msg` (HTML parse mode); reminders carry map links whose previews would
    bury the text, so previews are off, as in direct replies (`bot/app.py` Defaults).
    """
    return {"parse_mode": "HTML", "link_preview_options": {"is_disabled": True}}


def format_outbox_stats(
    stats: OutboxStats,
    *,
    now: datetime | None = None,
    sent_last_minute: int | None = None,
    rate_limited: int | None = None,
) -> str:
    """Plain text for an operator's terminal: depth by priority and state, pace, failures.

    `outbox.stats` reads only the table, so the send rate and the count of 429 answers
    (known to a running dispatcher) are optional and shown when the caller has them.
    """
    lines = ["outbox"]
    header = f"  {'priority':<14}" + "".join(f"{state.value:>11}" for state in STATES)
    lines.append(header)
    for priority in Priority:
        by_state = stats.depth.get(int(priority), {})
        lines.append(
            f"  {priority.value} {priority.name:<12}" + "".join(f"{by_state.get(s.value, 0):>11}" for s in STATES)
        )
    for unknown in sorted(set(stats.depth) - {int(p) for p in Priority}):
        by_state = stats.depth[unknown]
        lines.append(f"  {unknown} {'?':<12}" + "".join(f"{by_state.get(s.value, 0):>11}" for s in STATES))
    lines.append(f"waiting: {stats.waiting}")
    if stats.oldest_due is not None:
        lag = f" ({_lag(now - stats.oldest_due)} ago)" if now is not None and now >= stats.oldest_due else ""
        lines.append(f"oldest due: {stats.oldest_due.isoformat(timespec='seconds')}{lag}")
    if sent_last_minute is not None:
        lines.append(f"send rate: {sent_last_minute / 60:.1f}/s over the last minute ({sent_last_minute} sent)")
    if rate_limited is not None:
        lines.append(f"429 answers (flood control): {rate_limited}")
    lines.append(f"failures: {stats.failures}")
    for error, count in stats.top_errors:
        lines.append(f"  {count:>7}  {error[:100] or '(no error text)'}")
    return "\n".join(lines)


def _lag(delta: Any) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
