from django.apps import AppConfig


class PlacesConfig(AppConfig):
    name = "passnum.places"
    label = "places"
