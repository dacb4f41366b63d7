from django.contrib.auth import views as auth_views
from django.urls import path

from passnum.www import (
    apikeys,
    desk,
    finance,
    handout,
    nudges,
    opendata,
    opendata_activity,
    payments,
    places,
    public,
    steering,
    stock,
    views,
    wallet,
)

app_name = "www"

urlpatterns = [
    path("", views.home, name="home"),
    path("connexion/", views.LoginView.as_view(), name="login"),
    path("deconnexion/", auth_views.LogoutView.as_view(), name="logout"),
    path("mot-de-passe/oublie/", views.PasswordResetView.as_view(), name="password_reset"),
    path("mot-de-passe/envoye/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "mot-de-passe/nouveau/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("mot-de-passe/change/", views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("invitation/<str:token>/", views.invitation_accept_view, name="invitation_accept"),
    path("organisation/", views.organisation_switch, name="organisation_switch"),
    path("equipe/", views.members, name="members"),
    # public (no login): finder, place pages, "Mon pass", open data
    path("lieux/", public.finder, name="finder"),
    path("lieux/<int:pk>/", public.place_detail, name="place_detail"),
    path("mon-pass/", public.my_pass, name="my_pass"),
    path("pass/<str:token>/", wallet.wallet, name="wallet"),
    path("donnees/lieux.json", opendata.places_json, name="opendata_places_json"),
    path("donnees/lieux.csv", opendata.places_csv, name="opendata_places_csv"),
    # places: sign-up, checklist, their own space
    path("lieux-de-mediation/criteres/", places.checklist, name="place_checklist"),
    path("lieux-de-mediation/inscription/", places.signup, name="place_signup"),
    path("lieux-de-mediation/inscription/envoyee/", places.signup_done, name="place_signup_done"),
    path("lieu/mes-lieux/", places.my_sites, name="my_sites"),
    path("lieu/mes-lieux/nouveau/", places.my_site_add, name="my_site_add"),
    path("lieu/mes-lieux/<int:pk>/catalogue/", places.my_site_catalogue, name="my_site_catalogue"),
    path("lieu/mes-lieux/<int:pk>/redemander/", places.my_site_apply, name="my_site_apply"),
    path("lieu/coordonnees-bancaires/", places.bank_details, name="bank_details"),
    path("lieu/pieces/", places.documents, name="documents"),
    # funders: review the places of their territory
    path("financeur/lieux/", places.review_list, name="review_list"),
    path("financeur/lieux/<int:pk>/", places.review_detail, name="review_detail"),
    path("financeur/coordonnees-bancaires/<int:pk>/", places.review_bank, name="review_bank"),
    path("pieces/<int:pk>/", places.document_download, name="document_download"),
    path("prescripteur/carnets/<int:pk>/pass-numerique/", wallet.digital_pass_send, name="digital_pass_send"),
    path(
        "prescripteur/carnets/<int:pk>/pass-numerique/revoquer/", wallet.digital_pass_revoke, name="digital_pass_revoke"
    ),
    path("financeur/dispositifs/", views.program_list, name="program_list"),
    path("financeur/dispositifs/nouveau/", views.program_create_view, name="program_create"),
    path("financeur/dispositifs/<slug:slug>/", views.program_detail, name="program_detail"),
    path("financeur/dispositifs/<slug:slug>/modifier/", views.program_edit_view, name="program_edit"),
    path("financeur/dispositifs/<slug:slug>/carnets/", stock.program_booklets, name="program_booklets"),
    path("financeur/dispositifs/<slug:slug>/carnets/pdf/", stock.program_booklets_pdf, name="program_booklets_pdf"),
    path("prescripteur/stock/", stock.distributor_stock, name="distributor_stock"),
    path("carnets/<int:pk>/pdf/", stock.booklet_pdf, name="booklet_pdf"),
    path("prescripteur/stock/mouvement/", stock.distributor_stock_move, name="distributor_stock_move"),
    # distributors: hand a booklet to a person (passnum/www/handout.py)
    path("prescripteur/remettre/", handout.hand_out, name="hand_out"),
    path("prescripteur/remettre/<int:pk>/", handout.hand_out_person, name="hand_out_person"),
    path("prescripteur/remis/<int:pk>/", handout.hand_out_done, name="hand_out_done"),
    # places: the redemption desk (passnum/www/desk.py)
    path("lieu/encaisser/", desk.desk, name="desk"),
    path("lieu/encaissements/", desk.receipts, name="desk_receipts"),
    path("lieu/encaissements/<int:pk>/", desk.receipt_detail, name="desk_receipt"),
    path("lieu/encaissements/<int:pk>/annuler/", desk.receipt_undo_view, name="desk_receipt_undo"),
    # funders: settlement, claims, incidents, payment files, bank statements (passnum/www/finance.py)
    path("financeur/reglements/", finance.overview, name="finance_overview"),
    path("financeur/reglements/demandes/", finance.claims, name="finance_claims"),
    path("financeur/reglements/demandes/<int:pk>/", finance.claim_detail, name="finance_claim"),
    path("financeur/reglements/demandes/<int:pk>/payee/", finance.claim_paid, name="finance_claim_paid"),
    path(
        "financeur/reglements/demandes/<int:pk>/lignes/<int:line_pk>/rejeter/",
        finance.line_reject,
        name="finance_line_reject",
    ),
    path("financeur/reglements/incidents/", finance.incidents, name="finance_incidents"),
    path("financeur/reglements/incidents/<int:pk>/", finance.incident_detail, name="finance_incident"),
    path("financeur/reglements/virements/", finance.payment_files, name="finance_payment_files"),
    path(
        "financeur/reglements/arretes/<int:run_pk>/virements/",
        finance.payment_file_generate,
        name="finance_payment_file_generate",
    ),
    path(
        "financeur/reglements/virements/<int:pk>/xml/",
        finance.payment_file_download,
        name="finance_payment_file_download",
    ),
    path("financeur/reglements/releve-bancaire/", finance.statement_import, name="finance_statement_import"),
    # places: their payments; statements for the claim's place and funder; an organisation's bank account
    path("lieu/paiements/", payments.place_payments, name="place_payments"),
    path("lieu/paiements/<int:pk>/", payments.place_payment_detail, name="place_payment"),
    path("releves/<int:pk>/pdf/", payments.statement_pdf, name="statement_pdf"),
    path("releves/<int:pk>/csv/", payments.statement_csv, name="statement_csv"),
    path("organisation/compte-bancaire/", payments.bank_account, name="bank_account"),
    # API keys of an organisation (passnum/www/apikeys.py)
    path("cles-api/", apikeys.api_keys, name="api_keys"),
    path("cles-api/<int:pk>/revoquer/", apikeys.api_key_revoke, name="api_key_revoke"),
]

# steering (funnel, exports), nudges, open data on activity: each module keeps its own routes
urlpatterns += steering.urlpatterns + nudges.urlpatterns + opendata_activity.urlpatterns
