"""Whatever anyone types after any command, the bot answers and nothing raises.

The World fixture fails the test if the bot logged an error, so "never
raises" is checked by the same run that checks "always answers".
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.render.menus import COMMANDS
from tests.e2e.conftest import World

NAMES = sorted({name for command in COMMANDS for name in (command.id, command.en)})
ARGUMENTS = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
    st.lists(
        st.sampled_from(["", "en", "id", "87010123", "ABCDE23456", "<b>", "&", "'", "--", "0", "-1", "😀", "\u202e"]),
        max_size=4,
    ).map(" ".join),
)
LINES = st.builds(lambda name, args: f"/{name} {args}".strip(), st.sampled_from(NAMES), ARGUMENTS) | st.text(
    min_size=1, max_size=200
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINES, min_size=1, max_size=3), who=st.sampled_from(["stranger", "budi", "kapolsek_a1"]))
async def test_every_command_always_answers(world: World, lines: list[str], who: str) -> None:
    user = world.emu.user("Tamu") if who == "stranger" else await world.registered(who)
    for line in lines:
        if not line.strip():
            continue
        before = world.emu.count(user)
        await user.send(line)
        await world.eventually(lambda before=before: world.emu.count(user) > before, timeout=5)
