"""The command catalogue: names, aliases, and who may see them, in both languages.

`/bantuan` and the Telegram command menu (setMyCommands) are both drawn from
it, so each audience sees only what it may use.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.render import Html, Lang, Msg


class Audience(StrEnum):
    anyone = "anyone"
    personnel = "personnel"
    commander = "commander"
    group = "group"


@dataclass(frozen=True)
class Command:
    id: str
    en: str
    audience: Audience
    description: Msg
    also: tuple[Audience, ...] = ()
    """Further audiences that see it (`/kawal`: members in private, and command groups)."""

    def name(self, lang: Lang) -> str:
        return self.en if lang == "en" else self.id


COMMANDS: tuple[Command, ...] = (
    Command(
        "start", "start", Audience.anyone, Msg(id="Mulai / pendaftaran lewat tautan", en="Start / register from a link")
    ),
    Command("daftar", "register", Audience.anyone, Msg(id="Daftar: NRP KODE", en="Register: NRP CODE")),
    Command("bantuan", "help", Audience.anyone, Msg(id="Daftar perintah", en="List of commands")),
    Command("bahasa", "language", Audience.personnel, Msg(id="Bahasa: id atau en", en="Language: id or en")),
    Command("jadwal", "schedule", Audience.personnel, Msg(id="Jadwal dan TPS tugas saya", en="My shifts and TPS")),
    Command(
        "hadir", "checkin", Audience.personnel, Msg(id="Lapor hadir dengan lokasi", en="Check in with your location")
    ),
    Command(
        "selesai",
        "checkout",
        Audience.personnel,
        Msg(id="Selesai tugas (akhiri shift)", en="Check out (end the shift)"),
    ),
    Command(
        "lapor",
        "report",
        Audience.personnel,
        Msg(id="Laporan situasi: /lapor TEKS", en="Situation report: /report TEXT"),
    ),
    Command("darurat", "sos", Audience.personnel, Msg(id="Kontinjensi: /darurat TEKS", en="Contingency: /sos TEXT")),
    Command(
        "kawal",
        "escort",
        Audience.personnel,
        Msg(
            id="Pengawalan: tombol berangkat/tiba, atau pantauan satuan",
            en="Escorts: depart/arrive, or the unit's board",
        ),
        also=(Audience.group,),
    ),
    Command(
        "terima",
        "receive",
        Audience.personnel,
        Msg(id="Serah terima pengawalan: /terima KODE", en="Escort handover: /receive CODE"),
    ),
    Command("status", "status", Audience.commander, Msg(id="Status satuan [KODE]", en="Unit status [CODE]")),
    Command(
        "insiden", "incidents", Audience.commander, Msg(id="Kontinjensi yang masih terbuka", en="Open contingencies")
    ),
    Command(
        "siaran",
        "broadcast",
        Audience.commander,
        Msg(id="Siaran ke semua anggota: /siaran TEKS", en="Broadcast to all personnel: /broadcast TEXT"),
    ),
    Command(
        "rekap",
        "recap",
        Audience.commander,
        Msg(id="Rekap shift (grafik dan tabel)", en="Shift recap (chart and workbook)"),
    ),
    Command(
        "daftargrup",
        "registergroup",
        Audience.group,
        Msg(id="Jadikan grup ini grup komando: KODE_SATUAN", en="Make this group a command group: UNIT_CODE"),
    ),
)

AUDIENCES_OF = {
    "unregistered": (Audience.anyone,),
    "anggota": (Audience.anyone, Audience.personnel),
    "komandan": (Audience.anyone, Audience.personnel, Audience.commander),
    "admin": (Audience.anyone, Audience.personnel, Audience.commander),
    "group": (Audience.commander, Audience.group),
}


def commands_for(who: str) -> list[Command]:
    audiences = AUDIENCES_OF[who]
    return [command for command in COMMANDS if any(a in audiences for a in (command.audience, *command.also))]


def menu(who: str, lang: Lang) -> list[tuple[str, str]]:
    """(command, description) pairs for setMyCommands."""
    return [(command.name(lang), command.description(lang)) for command in commands_for(who)]


HELP_HEADER = Msg(id="<b>Perintah yang dapat Anda gunakan</b>", en="<b>Commands you can use</b>")


def help_text(who: str, lang: Lang) -> Html:
    lines: list[str] = [HELP_HEADER(lang)]
    for command in commands_for(who):
        alias = command.en if lang == "id" else command.id
        alias_note = f" (/{alias})" if alias != command.name(lang) else ""
        lines.append(f"/{command.name(lang)}{alias_note} — {command.description(lang)}")
    return Html("\n".join(lines))


LANGUAGE_USAGE = Msg(
    id="Format: <code>/bahasa id</code> atau <code>/bahasa en</code>.",
    en="Usage: <code>/language id</code> or <code>/language en</code>.",
)
LANGUAGE_SET = Msg(id="Bahasa diganti ke Bahasa Indonesia.", en="Language set to English.")
