from django.apps import AppConfig


class SettlementConfig(AppConfig):
    name = "passnum.settlement"
    label = "settlement"
