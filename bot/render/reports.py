"""`/rekap` texts: what is on the way, and the captions of the three files."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.render import Html, Msg
from bot.render.status import clock
from bot.services.reports import ExportFiles

NO_SHIFT = Msg(
    id="Belum ada shift yang direncanakan: tidak ada yang direkap.", en="No shift is planned: nothing to recap."
)
CHART = Msg(
    id="📈 Rekap <b>{unit}</b>, shift {shift}, per {time}: hadir kumulatif per 15 menit dan cakupan per satuan.",
    en="📈 Recap of <b>{unit}</b>, shift {shift}, as of {time}: cumulative check-ins per 15 minutes and coverage by unit.",
)
WORKBOOK = Msg(
    id="📊 Lembar kerja: hadir, laporan, kontinjensi (dengan eskalasinya), cakupan per satuan.",
    en="📊 Workbook: check-ins, sitreps, contingencies (with their escalation steps), coverage by unit.",
)
GEOJSON = Msg(
    id="🗺 GeoJSON untuk aplikasi peta: TPS (terjaga / belum / kontinjensi) dan kontinjensi.",
    en="🗺 GeoJSON for a map tool: TPS (covered / uncovered / contingency) and contingencies.",
)


def unit_label(files: ExportFiles) -> str:
    return files.unit.code if files.unit else "(semua / all)"


def chart_caption(files: ExportFiles, lang: str, zone: ZoneInfo) -> Html:
    return CHART(lang, unit=unit_label(files), shift=files.shift.name, time=clock(files.as_of, zone))
