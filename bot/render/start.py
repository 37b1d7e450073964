"""Greeting and help texts."""

from bot.render import Msg

GREETING = Msg(
    id=(
        "Selamat datang di <b>Siaga</b>, bot koordinasi pengamanan TPS.\n"
        "Untuk mendaftar, buka tautan pendaftaran dari operator atau kirim "
        "<code>/daftar NRP KODE</code>.\nKetik /bantuan untuk daftar perintah."
    ),
    en=(
        "Welcome to <b>Siaga</b>, the polling-station security coordination bot.\n"
        "To register, open the registration link from your operator or send "
        "<code>/register NRP CODE</code>.\nSend /help for the list of commands."
    ),
)

GREETING_REGISTERED = Msg(
    id="Selamat datang kembali, {rank} {name}. Ketik /bantuan untuk daftar perintah.",
    en="Welcome back, {rank} {name}. Send /help for the list of commands.",
)

UNKNOWN_COMMAND = Msg(
    id="Perintah tidak dikenal. Ketik /bantuan untuk daftar perintah.",
    en="Unknown command. Send /help for the list of commands.",
)
PLAIN_TEXT = Msg(
    id="Untuk melapor, awali dengan <code>/lapor</code>. Ketik /bantuan untuk daftar perintah.",
    en="To file a report, start with <code>/report</code>. Send /help for the list of commands.",
)
