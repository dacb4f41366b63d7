import io

from django.core.files.uploadedfile import SimpleUploadedFile

from passnum.places.services import ApplicantData, BankData, SiteData, place_signup

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
IBAN = "FR7630006000011234567890189"


def pdf(name="statuts.pdf"):
    return SimpleUploadedFile(name, PDF, content_type="application/pdf")


def site_data(**overrides) -> SiteData:
    data = {
        "name": "Médiathèque de Reims",
        "address": "2 rue des Fuseliers",
        "postal_code": "51100",
        "insee_code": "51454",
        "latitude": 49.25,
        "longitude": 4.03,
        "opening_hours": "Tu-Sa 10:00-19:00",
        "services": {"outils_du_quotidien": 1, "demarches_administratives": 2},
        "publics": ["seniors"],
        "supports": ["surdite"],
    }
    data.update(overrides)
    return SiteData(**data)


def signup(*, email="admin@lieu.fr", siret="21510045400010", rna="", sites=None, iban=IBAN, bic="AGRIFRPP", docs=None):
    return place_signup(
        name="Médiathèque Jean Falala",
        siret=siret,
        rna=rna,
        applicant=ApplicantData(email=email, password="un-mot-de-passe-solide", first_name="Lou", last_name="Martin"),
        sites=sites if sites is not None else [site_data()],
        bank=BankData(holder_name="Ville de Reims", iban=iban, bic=bic),
        documents=docs if docs is not None else [("immatriculation", pdf())],
    )


def big_file(size):
    return SimpleUploadedFile("gros.pdf", PDF + b"0" * size, content_type="application/pdf")


def fake_exe():
    return SimpleUploadedFile(
        "statuts.pdf", b"MZ\x90\x00" + io.BytesIO(b"x" * 100).read(), content_type="application/pdf"
    )
