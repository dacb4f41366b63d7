"""Vocabularies of the national data standard of *lieux de médiation numérique*, pinned to v1.0.1
(LaMednum/standard-mediation-num, tag v1.0.1, Licence Ouverte 2.0). Codes are ours and stable; labels are the
standard's exact strings, used as-is in imports and exports."""

from django.db import models

STANDARD_VERSION = "1.0.1"


class Service(models.TextChoices):
    ADMIN_PROCEDURES = "demarches_administratives", "Aide aux démarches administratives"
    EVERYDAY_TOOLS = "outils_du_quotidien", "Maîtrise des outils numériques du quotidien"
    EMPLOYMENT = "insertion_professionnelle", "Insertion professionnelle via le numérique"
    SAFE_USE = "usage_securise", "Utilisation sécurisée du numérique"
    PARENTING = "parentalite_education", "Parentalité et éducation avec le numérique"
    LEISURE = "loisirs_creations", "Loisirs et créations numériques"
    UNDERSTANDING = "comprehension_monde_numerique", "Compréhension du monde numérique"
    ACCESS = "acces_internet_materiel", "Accès internet et matériel informatique"
    EQUIPMENT = "materiel_prix_solidaire", "Acquisition de matériel informatique à prix solidaire"


class Public(models.TextChoices):
    """`publics_specifiquement_adresses` of the standard, plus the general public."""

    EVERYONE = "tous_publics", "Tous publics"
    YOUTH = "jeunes", "Jeunes"
    STUDENTS = "etudiants", "Étudiants"
    FAMILIES = "familles_enfants", "Familles et/ou enfants"
    SENIORS = "seniors", "Seniors"
    WOMEN = "femmes", "Femmes"


class SpecificSupport(models.TextChoices):
    """`prise_en_charge_specifique`: the accessibility and specific support a place offers."""

    DEAFNESS = "surdite", "Surdité"
    MOTOR = "handicaps_moteurs", "Handicaps moteurs"
    MENTAL = "handicaps_mentaux", "Handicaps mentaux"
    ILLITERACY = "illettrisme", "Illettrisme"
    ENGLISH = "langues_anglais", "Langues étrangères (anglais)"
    OTHER_LANGUAGES = "langues_autres", "Langues étrangères (autres)"
    VISUAL = "deficience_visuelle", "Déficience visuelle"


class AccessMode(models.TextChoices):
    """`modalites_acces`: how to book."""

    WALK_IN = "se_presenter", "Se présenter"
    PHONE = "telephoner", "Téléphoner"
    EMAIL = "contacter_par_mail", "Contacter par mail"
    ONLINE = "rdv_en_ligne", "Prendre un RDV en ligne"
    NO_PUBLIC = "pas_de_public", "Ce lieu n'accueille pas de public"
    PRESCRIPTION = "fiche_prescription", "Envoyer un mail avec une fiche de prescription"


STANDARD_PUBLICS = {  # our Public codes ↔ the standard's labels (the general public has no label there)
    "jeunes": "Jeunes",
    "etudiants": "Étudiants",
    "familles_enfants": "Familles et/ou enfants",
    "seniors": "Seniors",
    "femmes": "Femmes",
}
