from django.core.management.base import BaseCommand
from django.test.utils import override_settings

from passnum.accounts.models import Organisation
from passnum.common.demo import DEMO_LOGINS, DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Crée le territoire de démonstration (la Marne) si la base est vide ; ne touche à rien sinon."

    def handle(self, *args, **options):
        if Organisation.objects.exists():
            self.stdout.write("Base déjà remplie : données conservées.")
        else:
            # The demo's notifications (qualifications…) would flood the terminal: keep them in memory.
            with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
                seed_demo()
            self.stdout.write(self.style.SUCCESS("Territoire de démonstration créé (la Marne)."))
        self.stdout.write(f"Comptes de démonstration (mot de passe : {DEMO_PASSWORD}) :")
        for role, email, org in DEMO_LOGINS:
            self.stdout.write(f"  {role:<26} {email:<38} {org}")
