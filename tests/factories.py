"""Factories with traits. Objects that move value are made through the services, so the ledger always agrees."""

import datetime as dt

import factory
from django.utils import timezone

from passnum.accounts.enums import OrganisationKind, Role
from passnum.accounts.models import Membership, Organisation, User
from passnum.common.standard import Service
from passnum.geo.enums import TerritoryLevel
from passnum.programs.services import FunderShare, ProgramData, program_create

PASSWORD = "mot-de-passe-de-test-1"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"personne{n}@exemple.fr")
    first_name = "Camille"
    last_name = factory.Sequence(lambda n: f"Test{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation

    name = factory.Sequence(lambda n: f"Organisation {n}")
    slug = factory.Sequence(lambda n: f"organisation-{n}")
    kind = OrganisationKind.FUNDER

    class Params:
        funder = factory.Trait(kind=OrganisationKind.FUNDER)
        distributor = factory.Trait(kind=OrganisationKind.DISTRIBUTOR)
        place = factory.Trait(kind=OrganisationKind.PLACE, insee_code="51454")
        operator = factory.Trait(kind=OrganisationKind.OPERATOR)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organisation = factory.SubFactory(OrganisationFactory)
    role = Role.MEMBER

    class Params:
        admin = factory.Trait(role=Role.ADMIN)


def member_of(organisation, *, admin=True, **user_kwargs) -> User:
    user = UserFactory(**user_kwargs)
    MembershipFactory(user=user, organisation=organisation, role=Role.ADMIN if admin else Role.MEMBER)
    return user


class ProgramFactory(factory.Factory):
    """Builds a program through `program_create`. `cofunder` adds a 60/40 co-funding."""

    class Meta:
        model = ProgramData

    name = factory.Sequence(lambda n: f"Pass numérique test {n}")
    slug = factory.Sequence(lambda n: f"pass-test-{n}")
    valid_from = factory.LazyFunction(lambda: timezone.localdate() - dt.timedelta(days=10))
    valid_until = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=200))
    territory = factory.LazyFunction(lambda: [(TerritoryLevel.DEPARTEMENT, "51")])
    eligible_services = factory.LazyFunction(lambda: list(Service.values))
    face_value_cents = 1000
    vouchers_per_booklet = 10
    funders = None

    @classmethod
    def _create(cls, model_class, *, owner=None, cofunder=None, budget_cents=1_000_000, **kwargs):
        owner = owner or OrganisationFactory(funder=True)
        if kwargs.get("funders") is None:
            if cofunder is not None:
                kwargs["funders"] = [
                    FunderShare(funder=owner, share_bps=6000, budget_cents=budget_cents * 6 // 10),
                    FunderShare(funder=cofunder, share_bps=4000, budget_cents=budget_cents * 4 // 10),
                ]
            else:
                kwargs["funders"] = [FunderShare(funder=owner, share_bps=10_000, budget_cents=budget_cents)]
        return program_create(owner=owner, actor=None, data=model_class(**kwargs))

    _build = _create
