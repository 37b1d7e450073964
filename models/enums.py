"""The closed vocabularies of the domain, named as the glossary names them."""

from enum import IntEnum, StrEnum


class Force(StrEnum):
    polri = "polri"
    tni = "tni"
    linmas = "linmas"


class UnitKind(StrEnum):
    polda = "polda"
    polres = "polres"
    polsek = "polsek"
    kodam = "kodam"
    korem = "korem"
    kodim = "kodim"
    koramil = "koramil"
    linmas = "linmas"
    other = "other"


class Role(StrEnum):
    anggota = "anggota"
    komandan = "komandan"
    admin = "admin"


class Language(StrEnum):
    id = "id"
    en = "en"


class Kerawanan(StrEnum):
    kurang_rawan = "kurang_rawan"
    rawan = "rawan"
    sangat_rawan = "sangat_rawan"


class Access(StrEnum):
    darat = "darat"
    air = "air"
    darat_air = "darat_air"


class Phase(StrEnum):
    logistik = "logistik"
    pemungutan = "pemungutan"
    penghitungan = "penghitungan"
    pengawalan = "pengawalan"


class SitrepCategory(StrEnum):
    aman = "aman"
    logistik = "logistik"
    gangguan = "gangguan"
    bencana = "bencana"
    akses = "akses"
    lainnya = "lainnya"


class Severity(StrEnum):
    rendah = "rendah"
    sedang = "sedang"
    tinggi = "tinggi"


class ContingencyState(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class Priority(IntEnum):
    """Lower sends first: a contingency never waits behind a reminder run."""

    escalation = 0
    group_alert = 1
    reminder = 2
    broadcast = 3


class OutboxState(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    cancelled = "cancelled"


class PlaceKind(StrEnum):
    """Where an escort starts, passes or ends, besides a TPS."""

    gudang = "gudang"
    ppk = "ppk"
    pps = "pps"
    dermaga = "dermaga"
    lainnya = "lainnya"


class EscortKind(StrEnum):
    logistik = "logistik"
    kotak_suara = "kotak_suara"


class EscortState(StrEnum):
    terjadwal = "terjadwal"
    berangkat = "berangkat"
    tiba = "tiba"
    diterima = "diterima"


class EscortRole(StrEnum):
    ketua = "ketua"
    anggota = "anggota"


class EscortAlertKind(StrEnum):
    berhenti = "berhenti"
    hilang_sinyal = "hilang_sinyal"
    terlambat = "terlambat"
    menyimpang = "menyimpang"


class AlertClearReason(StrEnum):
    """Why an automatic escort alert ended by itself (its contingency is resolved with this reason)."""

    moved = "moved"
    position = "position"
    on_route = "on_route"
    arrived = "arrived"
