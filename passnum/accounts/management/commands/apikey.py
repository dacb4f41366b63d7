"""`passnum apikey`: API keys of a distributor or a place, for the operator's staff.

    passnum apikey create --organisation ccas-reims --name "Logiciel d’accueil"
    passnum apikey list --organisation ccas-reims
    passnum apikey revoke --organisation ccas-reims pn_AbCdEfG

`create` prints the key last, alone on its line, so that a script can take it with `tail -n 1`. It is shown only
then: the platform keeps its SHA-256, never the key."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from passnum.accounts.apikeys import KEY_PREFIX, api_key_create, api_key_revoke, api_keys_of
from passnum.accounts.models import Organisation
from passnum.common.errors import DomainError


class Command(BaseCommand):
    help = (
        "Clés d’API d’un prescripteur ou d’un lieu : `apikey create` crée une clé (affichée une seule fois), "
        "`apikey list` les liste, `apikey revoke` en révoque une."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="{create,list,revoke}")
        create = sub.add_parser("create", help="Crée une clé ; elle est affichée une seule fois, en dernière ligne.")
        create.add_argument("--organisation", required=True, metavar="SLUG", help="identifiant de l’organisation")
        create.add_argument("--name", required=True, metavar="NOM", help="nom de la clé (le logiciel qui l’utilise)")
        listing = sub.add_parser("list", help="Liste les clés de l’organisation (jamais les clés elles-mêmes).")
        listing.add_argument("--organisation", required=True, metavar="SLUG", help="identifiant de l’organisation")
        revoke = sub.add_parser("revoke", help="Révoque une clé : toute requête qui l’utilise est aussitôt refusée.")
        revoke.add_argument("--organisation", required=True, metavar="SLUG", help="identifiant de l’organisation")
        revoke.add_argument(
            "key", metavar="CLÉ", help="numéro de la clé ou son début (pn_…), tels que `list` les montre"
        )

    def handle(self, *args, action, **options):
        organisation = self._organisation(options["organisation"])
        if action == "create":
            self.create(organisation, options["name"])
        elif action == "list":
            self.list(organisation)
        else:
            self.revoke(organisation, options["key"])

    def _organisation(self, slug: str) -> Organisation:
        organisation = Organisation.objects.filter(slug=(slug or "").strip()).first()
        if organisation is None:
            raise CommandError(f"Aucune organisation n’a l’identifiant « {slug} ».")
        return organisation

    def create(self, organisation: Organisation, name: str) -> None:
        try:
            api_key, raw = api_key_create(organisation=organisation, name=name)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Clé n° {api_key.pk} « {api_key.name} » créée pour {organisation.name}. "
            "Copiez-la maintenant : elle ne sera plus jamais affichée."
        )
        self.stdout.write(raw)

    def list(self, organisation: Organisation) -> None:
        keys = list(api_keys_of(organisation=organisation))
        if not keys:
            self.stdout.write(f"Aucune clé d’API pour {organisation.name}.")
            return
        for k in keys:
            created = timezone.localtime(k.created_at).strftime("%d/%m/%Y %H:%M")
            state = (
                f"révoquée le {timezone.localtime(k.revoked_at).strftime('%d/%m/%Y %H:%M')}"
                if k.revoked_at
                else "active"
            )
            self.stdout.write(f"{k.pk}\t{k.prefix}…\t{k.name}\tcréée le {created}\t{state}")

    def revoke(self, organisation: Organisation, key: str) -> None:
        key = (key or "").strip().rstrip("…")
        keys = api_keys_of(organisation=organisation)
        if key.isdigit():
            found = list(keys.filter(pk=int(key))) if len(key) < 19 else []
        elif key.startswith(KEY_PREFIX) and len(key) > len(KEY_PREFIX):
            found = [k for k in keys if k.prefix.startswith(key) or key.startswith(k.prefix)]
        else:
            raise CommandError("Indiquez le numéro de la clé ou son début (pn_…), tels que `apikey list` les montre.")
        if not found:
            raise CommandError(f"{organisation.name} n’a pas de clé « {key} ».")
        if len(found) > 1:
            raise CommandError(f"Plusieurs clés commencent par « {key} » : indiquez leur numéro.")
        try:
            api_key = api_key_revoke(api_key=found[0])
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Clé n° {api_key.pk} « {api_key.name} » ({api_key.prefix}…) révoquée.")
