from django.apps import AppConfig


class NudgesConfig(AppConfig):
    name = "passnum.nudges"
    label = "nudges"
    verbose_name = "Relances"
