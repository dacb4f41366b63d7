from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "passnum.common"
    label = "common"
