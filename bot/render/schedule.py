"""`/jadwal` texts: a person's shifts and posts."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.render import Html, Msg, local_time, pages
from bot.services.schedule import Post, ShiftPlan

KERAWANAN = {
    "kurang_rawan": Msg(id="kurang rawan", en="low risk"),
    "rawan": Msg(id="rawan", en="vulnerable"),
    "sangat_rawan": Msg(id="sangat rawan", en="highly vulnerable"),
}
ACCESS = {
    "darat": Msg(id="darat", en="by road"),
    "air": Msg(id="🚤 lewat air — perhitungkan waktu perahu", en="🚤 by water — allow time for the boat"),
    "darat_air": Msg(id="🚤 darat lalu air — berangkat lebih awal", en="🚤 road then boat — leave early"),
}
PHASES = {
    "logistik": Msg(id="logistik", en="logistics"),
    "pemungutan": Msg(id="pemungutan suara", en="voting"),
    "penghitungan": Msg(id="penghitungan suara", en="counting"),
    "pengawalan": Msg(id="pengawalan kotak suara", en="ballot-box escort"),
}

HEADER = Msg(id="<b>Jadwal tugas Anda</b>", en="<b>Your assignments</b>")
NONE = Msg(id="Tidak ada jadwal tugas mendatang untuk Anda.", en="You have no upcoming assignments.")
CURRENT = Msg(id="▶️ <b>SEKARANG</b>", en="▶️ <b>NOW</b>")
SHIFT = Msg(id="<b>{name}</b> ({phase})\n🕐 {start} – {end}", en="<b>{name}</b> ({phase})\n🕐 {start} – {end}")
POST = Msg(
    id="📍 <b>{code}</b> (TPS {number}) — {address}\n   Kerawanan: {kerawanan}; akses: {access}\n   Satuan: {unit}",
    en="📍 <b>{code}</b> (TPS {number}) — {address}\n   Vulnerability: {kerawanan}; access: {access}\n   Unit: {unit}",
)
RELOCATED = Msg(
    id="   ⚠️ TPS dipindahkan {at} — lokasi baru di peta", en="   ⚠️ TPS relocated {at} — new place on the map"
)
MAP = Msg(
    id='   <a href="https://maps.google.com/?q={lat},{lon}">Buka peta</a>',
    en='   <a href="https://maps.google.com/?q={lat},{lon}">Open map</a>',
)


def post_lines(post: Post, lang: str, zone: ZoneInfo) -> list[str]:
    lines: list[str] = [
        POST(
            lang,
            code=post.tps_code,
            number=post.tps_number,
            address=post.address or "-",
            kerawanan=KERAWANAN[post.kerawanan](lang),
            access=ACCESS[post.access](lang),
            unit=post.unit_name,
        ),
        MAP(lang, lat=f"{post.lat:.6f}", lon=f"{post.lon:.6f}"),
    ]
    if post.relocated_at is not None:
        lines.append(RELOCATED(lang, at=local_time(post.relocated_at, zone, lang)))
    return lines


def shift_lines(plan: ShiftPlan, lang: str, zone: ZoneInfo, now: datetime) -> list[str]:
    lines: list[str] = [CURRENT(lang)] if plan.is_current(now) else []
    lines.append(
        SHIFT(
            lang,
            name=plan.shift_name,
            phase=PHASES[plan.phase](lang),
            start=local_time(plan.starts_at, zone, lang),
            end=local_time(plan.ends_at, zone, lang),
        )
    )
    for post in plan.posts:
        lines.extend(post_lines(post, lang, zone))
    return lines


def schedule_pages(plans: list[ShiftPlan], lang: str, zone: ZoneInfo, now: datetime) -> list[Html]:
    """One message, or several when a person covers many TPS over many shifts."""
    if not plans:
        return [NONE(lang)]
    return pages([HEADER(lang)] + ["\n".join(shift_lines(plan, lang, zone, now)) for plan in plans])
