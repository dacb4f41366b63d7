from django.apps import AppConfig


class SteeringConfig(AppConfig):
    name = "passnum.steering"
    label = "steering"
    verbose_name = "Pilotage"
