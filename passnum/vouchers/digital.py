"""Digital passes: a booklet delivered as a link by SMS and/or e-mail, opening the wallet page (`www:wallet`).

The link's token (`secrets.token_urlsafe(32)`, 256 bits) is the credential: only its SHA-256 is stored, and only a
masked hint of where it went (`06 •• •• •• 12`, `c•••@exemple.fr`). The phone number and the address are used to
send, then forgotten: to send again, the distributor types them again. Giving a digital pass to a person is the
hand-out: a booklet still in stock is handed out first. A lost phone: revoke the pass, then send a new one.

Reminders: only if the person agrees (`consent_reminders` at send time, or their Beneficiary record's consent),
the phone and/or address are kept encrypted on the pass (`reminder_contact`, Fernet with PASSNUM_CONTACT_KEY) so
that the expiry reminders (passnum.settlement.expiry) can reach them. The contact is erased when the pass is
revoked, when the person opts out, after the last reminder and when the program expires."""

import base64
import hashlib
import json
import logging
import os
import re
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from passnum.common.errors import DomainError
from passnum.common.sms import SmsError, send_sms
from passnum.journal.services import journal_record
from passnum.vouchers.models import Booklet, DigitalPass
from passnum.vouchers.services import booklet_hand_out

logger = logging.getLogger(__name__)

Channel = DigitalPass.Channel
MAX_TOKEN_LENGTH = 100  # token_urlsafe(32) is 43 characters; anything much longer is not ours

# Mobile numbers of the overseas departments, dialled in France as 0690…, abroad as +590 690…
DROM_MOBILE_PREFIXES = {
    "0690": "590",  # Guadeloupe, Saint-Barthélemy, Saint-Martin
    "0691": "590",
    "0694": "594",  # Guyane
    "0696": "596",  # Martinique
    "0697": "596",
    "0692": "262",  # La Réunion
    "0693": "262",
    "0639": "262",  # Mayotte
}
COUNTRY_CODES = ("33", "262", "590", "594", "596")
_NATIONAL_MOBILE = re.compile(r"^0[67][0-9]{8}$")
_SEPARATORS = re.compile(r"[\s.\-/()\u00a0\u202f]")

SMS_TEXT = "Vos chèques du pass numérique : {url} Gardez ce lien pour vous."
EMAIL_SUBJECT = "Votre pass numérique : vos chèques et leurs QR codes"
EMAIL_BODY = """Bonjour,

Voici votre pass numérique « {program} ». Ouvrez ce lien pour voir vos chèques, leurs QR codes, ce qu’il vous reste et
où les utiliser :

{url}

Valable du {valid_from:%d/%m/%Y} au {valid_until:%d/%m/%Y}.

Ce lien donne accès à vos chèques : gardez-le pour vous. Si vous le perdez ou si quelqu’un d’autre l’a reçu,
demandez à la structure qui vous a remis le pass de le révoquer et de vous en envoyer un nouveau.

— Pass numérique
"""


# --- pure helpers ----------------------------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def wallet_url(token: str) -> str:
    return settings.PASSNUM_PUBLIC_URL.rstrip("/") + reverse("www:wallet", args=[token])


def normalise_phone(raw: str) -> str:
    """A French mobile number as typed → E.164. '06 12 34 56 78', '+33 (0)6 12…', '0033 7…' → '+33612345678';
    overseas: '0690 12 34 56' or '+590 690 12 34 56' → '+590690123456'. Raises DomainError otherwise."""
    text = _SEPARATORS.sub("", raw.replace("(0)", ""))
    if text.startswith("00"):
        text = "+" + text[2:]
    given_code = None
    if text.startswith("+"):
        given_code = next((code for code in COUNTRY_CODES if text[1:].startswith(code)), None)
        if given_code is None:
            raise DomainError(
                "Seuls les numéros de portable français sont acceptés (métropole et outre-mer).",
                code="phone_not_french",
                field="phone",
            )
        text = "0" + text[1 + len(given_code) :]
    if not _NATIONAL_MOBILE.match(text):
        raise DomainError(
            "Ce numéro n’est pas un numéro de portable français : 10 chiffres commençant par 06 ou 07, "
            "par exemple 06 12 34 56 78.",
            code="phone_invalid",
            field="phone",
        )
    country = DROM_MOBILE_PREFIXES.get(text[:4], "33")
    if given_code not in (None, "33", country):
        raise DomainError(
            f"Ce numéro ne correspond pas à l’indicatif +{given_code}.", code="phone_invalid", field="phone"
        )
    return f"+{country}{text[1:]}"


def mask_phone_hint(e164: str) -> str:
    """'+33612345678' → '06 •• •• •• 78'; '+590690123456' → '06 •• •• •• 56' (the national form, masked)."""
    country = next(code for code in COUNTRY_CODES if e164[1:].startswith(code))
    national = "0" + e164[1 + len(country) :]
    return f"{national[:2]} •• •• •• {national[-2:]}"


def normalise_email(raw: str) -> str:
    address = raw.strip()
    try:
        validate_email(address)
    except ValidationError:
        raise DomainError(
            "Cette adresse électronique n’est pas valable (par exemple : prenom.nom@exemple.fr).",
            code="email_invalid",
            field="email",
        ) from None
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def mask_email_hint(address: str) -> str:
    """'camille.martin@exemple.fr' → 'c•••@exemple.fr'."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}•••@{domain}"


def sms_text(url: str) -> str:
    return SMS_TEXT.format(url=url)


# --- the reminder contact, encrypted ---------------------------------------------------------------------------


def _contact_keys() -> list[bytes]:
    """PASSNUM_CONTACT_KEY (settings or environment): Fernet keys separated by commas, the first one encrypts
    (older ones still decrypt, for rotation). Without it (development, tests), a key derived from SECRET_KEY."""
    raw = getattr(settings, "PASSNUM_CONTACT_KEY", "") or os.environ.get("PASSNUM_CONTACT_KEY", "")
    keys = [k.strip().encode() for k in raw.split(",") if k.strip()]
    if not keys:
        digest = hashlib.sha256(b"passnum.contact-key:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(digest)]
    return keys


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in _contact_keys()])


def contact_seal(*, phone: str = "", email: str = "") -> str:
    """The normalised phone (E.164) and/or address, encrypted and authenticated: an opaque ASCII token."""
    payload = json.dumps({"phone": phone, "email": email}, separators=(",", ":")).encode()
    return _fernet().encrypt(payload).decode("ascii")


def contact_open(sealed: str) -> tuple[str, str]:
    """(phone, email) from `contact_seal`'s token; ('', '') when empty or unreadable (key lost or replaced)."""
    if not sealed:
        return "", ""
    try:
        data = json.loads(_fernet().decrypt(sealed.encode("ascii")))
    except (InvalidToken, ValueError):
        return "", ""
    return data.get("phone", ""), data.get("email", "")


def contact_send(*, phone: str, email: str, sms: str, subject: str, body: str, label: str) -> list[str]:
    """Send one reminder to a person by every channel their contact has; the channels that went through
    ("sms", "email"). A failure is logged with `label` (ids only, never the contact) and does not stop the other."""
    channels = []
    if phone:
        try:
            send_sms(phone, sms)
            channels.append("sms")
        except SmsError as exc:
            logger.warning("%s: SMS not sent: %s", label, exc.code)
    if email:
        try:
            send_mail(subject=subject, message=body, from_email=None, recipient_list=[email])
            channels.append("email")
        except Exception as exc:  # the mail server, whatever it raises: the run goes on
            logger.warning("%s: e-mail not sent: %s", label, type(exc).__name__)
    return channels


def channel_of(channels: list[str]) -> str:
    return "both" if len(channels) == 2 else channels[0]


# --- selectors -------------------------------------------------------------------------------------------------


def digital_pass_get(*, token: str) -> DigitalPass | None:
    """The active (not revoked) pass whose token this is, with its booklet and program; None otherwise."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return (
        DigitalPass.objects.select_related("booklet", "booklet__program")
        .filter(token_hash=token_hash(token), revoked_at__isnull=True)
        .first()
    )


def digital_pass_current(*, booklet: Booklet) -> DigitalPass | None:
    """The booklet's active pass, if any."""
    return DigitalPass.objects.filter(booklet=booklet, revoked_at__isnull=True).first()


def digital_pass_history(*, booklet: Booklet):
    """Every pass of the booklet, newest first (active and revoked)."""
    return DigitalPass.objects.filter(booklet=booklet).order_by("-created_at", "-id")


# --- services --------------------------------------------------------------------------------------------------


def _check_distributor(booklet: Booklet, organisation) -> None:
    if organisation is None or booklet.distributor_id != organisation.id:
        raise DomainError("Ce carnet n’est pas dans votre stock.", code="booklet_not_in_stock")


def digital_pass_send(
    *,
    booklet: Booklet,
    phone: str = "",
    email: str = "",
    actor,
    organisation,
    consent_reminders: bool | None = None,
) -> DigitalPass:
    """Create the booklet's digital pass and send its link by SMS (`phone`) and/or e-mail (`email`).

    The booklet is handed out first if it is still in stock. Refused while another pass is active. The SMS leaves
    inside the transaction, after every write: if the provider refuses it, nothing is kept and the distributor can
    try again. The e-mail leaves once the transaction has committed, like the platform's other e-mails.

    `consent_reminders`: the person agrees (True) or refuses (False) expiry reminders; None follows the consent
    recorded at hand-out (Beneficiary.consent_reminders), and no record means no reminder. Only with consent is
    the contact kept, encrypted, on the pass."""
    phone, email = (phone or "").strip(), (email or "").strip()
    if not phone and not email:
        raise DomainError(
            "Indiquez un numéro de portable, une adresse électronique, ou les deux.", code="contact_required"
        )
    to_phone = normalise_phone(phone) if phone else ""
    to_email = normalise_email(email) if email else ""
    channel = Channel.BOTH if to_phone and to_email else (Channel.SMS if to_phone else Channel.EMAIL)
    hints = [mask_phone_hint(to_phone)] if to_phone else []
    hints += [mask_email_hint(to_email)] if to_email else []

    with transaction.atomic():
        booklet = Booklet.objects.select_for_update(of=("self",)).select_related("program").get(pk=booklet.pk)
        _check_distributor(booklet, organisation)
        active = digital_pass_current(booklet=booklet)
        if active is not None:
            raise DomainError(
                f"Ce carnet a déjà un pass numérique actif, envoyé le {timezone.localtime(active.created_at):%d/%m/%Y} "
                f"à {active.recipient_hint}. Révoquez-le d’abord, puis envoyez-en un nouveau.",
                code="digital_pass_active",
            )
        if booklet.handed_out_at is None:
            booklet_hand_out(booklet=booklet, actor=actor, organisation=organisation)
        if consent_reminders is None:
            beneficiary = booklet.beneficiary
            consent_reminders = bool(beneficiary and beneficiary.consent_reminders)
        token = secrets.token_urlsafe(32)
        digital_pass = DigitalPass.objects.create(
            booklet=booklet,
            token_hash=token_hash(token),
            channel=channel,
            recipient_hint=" et ".join(hints),
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            organisation=organisation,
            reminder_contact=contact_seal(phone=to_phone, email=to_email) if consent_reminders else "",
        )
        journal_record(
            action="digital_pass.send",
            actor=actor,
            organisation=organisation,
            obj=digital_pass,
            data={"booklet": booklet.pk, "channel": channel},
        )
        if consent_reminders:  # the proof of consent, without the contact itself
            journal_record(
                action="digital_pass.reminders_consent",
                actor=actor,
                organisation=organisation,
                obj=digital_pass,
                data={"booklet": booklet.pk},
            )
        url = wallet_url(token)
        if to_email:
            program = booklet.program
            body = EMAIL_BODY.format(
                program=program.name, url=url, valid_from=program.valid_from, valid_until=program.valid_until
            )
            transaction.on_commit(
                lambda: send_mail(subject=EMAIL_SUBJECT, message=body, from_email=None, recipient_list=[to_email])
            )
        if to_phone:
            try:
                send_sms(to_phone, sms_text(url))
            except SmsError as exc:
                raise DomainError(
                    f"Le SMS n’a pas pu être envoyé : {exc.message} Rien n’a été enregistré.",
                    code=exc.code,
                    field="phone",
                ) from None
    return digital_pass


def digital_pass_revoke(*, booklet: Booklet, reason: str, actor, organisation) -> DigitalPass:
    """Revoke the booklet's active pass: its link stops working at once. The vouchers stay with the person."""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Indiquez le motif de la révocation.", code="reason_required", field="reason")
    with transaction.atomic():
        booklet = Booklet.objects.select_for_update(of=("self",)).get(pk=booklet.pk)
        _check_distributor(booklet, organisation)
        digital_pass = (
            DigitalPass.objects.select_for_update(of=("self",)).filter(booklet=booklet, revoked_at__isnull=True).first()
        )
        if digital_pass is None:
            raise DomainError("Ce carnet n’a pas de pass numérique actif.", code="digital_pass_none")
        digital_pass.revoked_at = timezone.now()
        digital_pass.revoked_reason = reason[:200]
        digital_pass.reminder_contact = ""
        digital_pass.save(update_fields=["revoked_at", "revoked_reason", "reminder_contact"])
        journal_record(
            action="digital_pass.revoke",
            actor=actor,
            organisation=organisation,
            obj=digital_pass,
            data={"booklet": booklet.pk, "reason": reason[:200]},
        )
    return digital_pass


def digital_pass_reminders_stop(*, digital_pass: DigitalPass, actor=None, organisation=None) -> DigitalPass:
    """The person no longer wants reminders: the encrypted contact is erased at once. Doing it twice is harmless."""
    with transaction.atomic():
        digital_pass = DigitalPass.objects.select_for_update(of=("self",)).get(pk=digital_pass.pk)
        if digital_pass.reminder_contact:
            digital_pass.reminder_contact = ""
            digital_pass.save(update_fields=["reminder_contact"])
            journal_record(
                action="digital_pass.reminders_stop",
                actor=actor,
                organisation=organisation,
                obj=digital_pass,
                data={"booklet": digital_pass.booklet_id},
            )
    return digital_pass
