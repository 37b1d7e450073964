"""`/status`: check-in and coverage of a unit's subtree, counted (`counting`) and put together for the screen (`view`).

`counting` is the SQL that counts people, TPS and contingencies of a
subtree, with who may ask and which shift is meant; `view` builds what a
commander reads around those numbers (child units, the unit above, the
latest sitreps, the missing pages) and imports `counting`, never the other
way. Callers import from here, whichever half a name lives in.
"""

from bot.services.status.counting import (
    EPSILON,
    PEOPLE_COLUMNS,
    SECURITY,
    Coverage,
    Figures,
    People,
    Refusal,
    ShiftRef,
    UnitRef,
    Viewer,
    authorize,
    children_and_self,
    direct_figures,
    direct_statement,
    figures_by_unit,
    figures_statement,
    guard_shares,
    is_narrow,
    people_by_unit,
    pick_shift,
    scope_units,
    staffing_pattern,
    tally_statement,
    tps_facts,
)
from bot.services.status.view import (
    MISSING_PAGE_SIZE,
    ChildStatus,
    MissingPage,
    MissingPerson,
    SitrepLine,
    UnitStatus,
    child_units,
    latest_sitreps,
    missing_for,
    status_for,
)

__all__ = [
    "EPSILON",
    "MISSING_PAGE_SIZE",
    "PEOPLE_COLUMNS",
    "SECURITY",
    "ChildStatus",
    "Coverage",
    "Figures",
    "MissingPage",
    "MissingPerson",
    "People",
    "Refusal",
    "ShiftRef",
    "SitrepLine",
    "UnitRef",
    "UnitStatus",
    "Viewer",
    "authorize",
    "child_units",
    "children_and_self",
    "direct_figures",
    "direct_statement",
    "figures_by_unit",
    "figures_statement",
    "guard_shares",
    "is_narrow",
    "latest_sitreps",
    "missing_for",
    "people_by_unit",
    "pick_shift",
    "scope_units",
    "staffing_pattern",
    "status_for",
    "tally_statement",
    "tps_facts",
]
