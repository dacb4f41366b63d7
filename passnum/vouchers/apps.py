from django.apps import AppConfig


class VouchersConfig(AppConfig):
    name = "passnum.vouchers"
    label = "vouchers"
