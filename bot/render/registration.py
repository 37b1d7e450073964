"""Registration texts, Indonesian and English side by side."""

from bot.render import Msg

USAGE = Msg(
    id="Format: <code>/daftar NRP KODE</code>, misalnya <code>/daftar 87010123 ABCDE23456</code>.",
    en="Usage: <code>/register NRP CODE</code>, for example <code>/register 87010123 ABCDE23456</code>.",
)
REGISTERED = Msg(
    id="✅ Terdaftar sebagai <b>{title}</b>, {unit}.\nKetik /jadwal untuk melihat tugas Anda, /bantuan untuk perintah lain.",
    en="✅ Registered as <b>{title}</b>, {unit}.\nSend /schedule to see your assignments, /help for other commands.",
)
ALREADY = Msg(
    id="Akun ini sudah terdaftar sebagai <b>{title}</b>.",
    en="This account is already registered as <b>{title}</b>.",
)
ACCOUNT_TAKEN = Msg(
    id="Akun Telegram ini sudah terhubung ke NRP lain. Hubungi operator bila ini keliru.",
    en="This Telegram account is already linked to another NRP. Contact your operator if this is wrong.",
)
PERSON_TAKEN = Msg(
    id="NRP ini sudah terhubung ke akun Telegram lain. Hubungi operator.",
    en="This NRP is already linked to another Telegram account. Contact your operator.",
)
INVALID = Msg(
    id="❌ Kode tidak cocok. Periksa NRP dan kode dari operator.",
    en="❌ The code does not match. Check the NRP and the code from your operator.",
)
EXPIRED = Msg(
    id="❌ Kode sudah kedaluwarsa. Minta kode baru ke operator.",
    en="❌ The code has expired. Ask your operator for a new one.",
)
USED = Msg(
    id="❌ Kode sudah pernah dipakai. Minta kode baru ke operator.",
    en="❌ The code has already been used. Ask your operator for a new one.",
)
THROTTLED = Msg(
    id="⏳ Terlalu banyak percobaan gagal. Coba lagi dalam satu jam.",
    en="⏳ Too many failed attempts. Try again in an hour.",
)
NOT_REGISTERED = Msg(
    id="Anda belum terdaftar. Kirim <code>/daftar NRP KODE</code> dengan kode dari operator.",
    en="You are not registered yet. Send <code>/register NRP CODE</code> with the code from your operator.",
)
COMMANDERS_ONLY = Msg(
    id="⛔ Perintah ini hanya untuk komandan.",
    en="⛔ This command is for commanders only.",
)
PRIVATE_ONLY = Msg(
    id="Perintah ini hanya lewat chat pribadi dengan bot.",
    en="This command only works in a private chat with the bot.",
)
UNREGISTERED_GROUP = Msg(
    id="Grup ini belum terdaftar sebagai grup komando. Komandan dapat mendaftarkannya dengan <code>/daftargrup KODE_SATUAN</code>.",
    en="This group is not registered as a command group. A commander can register it with <code>/registergroup UNIT_CODE</code>.",
)
