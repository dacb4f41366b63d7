from django.apps import AppConfig


class GeoConfig(AppConfig):
    name = "passnum.geo"
    label = "geo"
