"""What a person is told when the bot could not do what they asked."""

from bot.render import Msg

FAILED = Msg(
    id="⚠️ Maaf, terjadi gangguan dan permintaan Anda <b>belum tersimpan</b>. Silakan coba lagi sebentar lagi.",
    en="⚠️ Sorry, something went wrong and your request was <b>not saved</b>. Please try again shortly.",
)
