from django.apps import AppConfig


class ProgramsConfig(AppConfig):
    name = "passnum.programs"
    label = "programs"
