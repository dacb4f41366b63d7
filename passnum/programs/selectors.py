from django.db.models import Exists, OuterRef, Q

from passnum.geo.models import Commune
from passnum.programs.models import Program, ProgramFunder, ProgramTerritory


def program_list_for(*, organisation):
    """Programs an organisation funds (as lead or co-funder)."""
    if organisation is None:
        return Program.objects.none()
    return (
        Program.objects.filter(Exists(ProgramFunder.objects.filter(program=OuterRef("pk"), funder=organisation)))
        .select_related("owner")
        .order_by("-valid_from", "name")
    )


def program_get_for(*, organisation, slug: str) -> Program | None:
    return program_list_for(organisation=organisation).filter(slug=slug).first()


def program_shares(*, program_id: int) -> list[tuple[int, int]]:
    """[(funder_id, share_bps)] in the fixed order used for every split of this program."""
    return list(
        ProgramFunder.objects.filter(program_id=program_id).order_by("id").values_list("funder_id", "share_bps")
    )


def program_covers_commune(*, program: Program, commune_code: str) -> bool:
    """Is the commune inside the program's territory? One indexed query."""
    items = ProgramTerritory.objects.filter(program_id=program.pk)
    return Commune.objects.filter(
        Q(code=commune_code)
        & Exists(
            items.filter(
                Q(level="commune", code=OuterRef("code"))
                | Q(level="commune", code=OuterRef("parent_id"))
                | Q(level="epci", code=OuterRef("epci_id"))
                | Q(level="departement", code=OuterRef("departement_id"))
                | Q(level="region", code=OuterRef("region_id"))
            )
        )
    ).exists()


def program_territory_labels(*, program: Program) -> list[str]:
    """'Département : Marne (51)' for each item of the program's territory, by level then code."""
    from passnum.geo.models import Departement, Epci, Region

    items = list(program.territory.order_by("level", "code"))
    names: dict[tuple[str, str], str] = {}
    for level, model in (("region", Region), ("departement", Departement), ("epci", Epci), ("commune", Commune)):
        codes = [t.code for t in items if t.level == level]
        if codes:
            names.update(
                {(level, code): name for code, name in model.objects.filter(code__in=codes).values_list("code", "name")}
            )
    return [f"{t.get_level_display()} : {names.get((t.level, t.code), '?')} ({t.code})" for t in items]


def program_covers_commune_sql(program_id_sql: str) -> str:
    """program_covers_commune as an SQL boolean expression, for statements that read it along with other things:
    `program_id_sql` is the program's id (a column of the outer statement), and the expression takes one
    parameter, the commune's code. The same levels and links as program_covers_commune (tests compare them)."""
    commune, territory = Commune._meta.db_table, ProgramTerritory._meta.db_table
    links = " OR ".join(
        f"(t.level = '{level}' AND t.code = c.{column})"
        for level, column in (
            ("commune", "code"),
            ("commune", "parent_id"),
            ("epci", "epci_id"),
            ("departement", "departement_id"),
            ("region", "region_id"),
        )
    )
    return (
        f"EXISTS(SELECT 1 FROM {commune} c WHERE c.code = %s AND EXISTS("  # noqa: S608 (constants only)
        f"SELECT 1 FROM {territory} t WHERE t.program_id = {program_id_sql} AND ({links})))"
    )
