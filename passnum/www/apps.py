from django.apps import AppConfig


class WwwConfig(AppConfig):
    name = "passnum.www"
    label = "www"
